// kafkajs logging in on a SASL_PLAINTEXT listener (run by test_sasl_stack.py):
// node sasl.js BOOTSTRAP MECHANISM USER PASSWORD TOPIC -> sends "kjs-<mechanism>" and prints "sent",
// or prints the error's type and message and exits 2 when the login is refused.
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, mechanism, username, password, topic] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'sasl-test', brokers: [bootstrap], logLevel: logLevel.NOTHING,
                            sasl: { mechanism: mechanism.toLowerCase(), username, password },
                            retry: { retries: 1 } });
  const producer = kafka.producer();
  try {
    await producer.connect();
  } catch (e) {
    console.log(`refused ${e.type || e.name}: ${e.message}`);
    process.exit(2);
  }
  await producer.send({ topic, acks: -1, messages: [{ value: `kjs-${mechanism}` }] });
  await producer.disconnect();
  console.log('sent');
}

main().catch(e => { console.error(e); process.exit(1); });
