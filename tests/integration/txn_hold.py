"""Opens a transaction, writes to it and waits to be killed (test_transactions_clients' timeout
case). usage: txn_hold.py BOOTSTRAP TOPIC TXN_ID TIMEOUT_MS"""

import sys
import time

from confluent_kafka import Producer

bootstrap, topic, txn_id, timeout_ms = sys.argv[1:5]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
              "transaction.timeout.ms": int(timeout_ms), "linger.ms": 1})
p.init_transactions(30)
p.begin_transaction()
for i in range(5):
    p.produce(topic, value=f"held-{i}".encode())
p.flush(10)
print("ready", flush=True)
time.sleep(120)
