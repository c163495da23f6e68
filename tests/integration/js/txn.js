// kafkajs transactional producer (run by test_transactions_clients.py):
// node txn.js BOOTSTRAP TOPIC TXN_ID -> one committed transaction ("kjs-commit-*") and one
// aborted ("kjs-abort-*"), then prints "done".
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, txnId] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'txn-test', brokers: [bootstrap], logLevel: logLevel.NOTHING,
                            retry: { retries: 5 } });
  const producer = kafka.producer({ transactionalId: txnId, maxInFlightRequests: 1, idempotent: true });
  await producer.connect();
  let txn = await producer.transaction();
  await txn.send({ topic, messages: [0, 1, 2].map(i => ({ key: `k${i}`, value: `kjs-commit-${i}` })) });
  await txn.commit();
  txn = await producer.transaction();
  await txn.send({ topic, messages: [0, 1].map(i => ({ key: `k${i}`, value: `kjs-abort-${i}` })) });
  await txn.abort();
  await producer.disconnect();
  console.log('done');
}

main().catch(e => { console.error(e); process.exit(1); });
