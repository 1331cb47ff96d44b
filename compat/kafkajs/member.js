// One member of a kafkajs consumer group, run as its own process by scenario.js so that it can
// be killed with SIGKILL. It reports on stdout, one JSON object a line:
//   {"ev":"assigned","partitions":[0,2]}            after each join (its whole assignment)
//   {"ev":"msg","p":0,"o":"12","v":"m-12"}           each record, before its offset is committed
//   {"ev":"committed","p":0,"o":"13"}                after OffsetCommit of the next offset returned
//   {"ev":"stopped"}                                 after a clean disconnect (on SIGTERM)
// Offsets are committed by hand, once per batch (autoCommit off), so "committed" is exact.
//
//   node member.js BOOTSTRAP GROUP TOPIC CLIENT_ID
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, group, topic, clientId] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const kafka = new Kafka({
  clientId,
  brokers: [bootstrap],
  logLevel: logLevel.ERROR,
  retry: { retries: 10 },
});
// sessionTimeout 6000: the smallest both brokers accept (group.min.session.timeout.ms)
const consumer = kafka.consumer({
  groupId: group,
  sessionTimeout: 6000,
  heartbeatInterval: 500,
  rebalanceTimeout: 20000,
  maxWaitTimeInMs: 200,
});

consumer.on(consumer.events.GROUP_JOIN, (e) => {
  const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
  out({ ev: 'assigned', partitions: parts });
});
consumer.on(consumer.events.CRASH, (e) => {
  out({ ev: 'crash', error: String(e.payload.error) });
});

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      let last = null;
      for (const m of batch.messages) {
        if (!isRunning() || isStale()) break;
        out({ ev: 'msg', p: batch.partition, o: m.offset, v: m.value.toString() });
        resolveOffset(m.offset);
        last = m.offset;
      }
      if (last !== null) {
        const next = (BigInt(last) + 1n).toString();
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }]);
        out({ ev: 'committed', p: batch.partition, o: next });
      }
      await heartbeat();
    },
  });
}

let stopping = false;
process.on('SIGTERM', async () => {
  if (stopping) return;
  stopping = true;
  try {
    await consumer.disconnect();
  } finally {
    out({ ev: 'stopped' });
    process.exit(0);
  }
});

main().catch((err) => {
  out({ ev: 'crash', error: String(err) });
  process.exit(1);
});
