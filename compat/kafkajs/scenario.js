// A kafkajs consumer-group scenario against one broker (kafkajs' own test suite needs Docker).
//
//   node scenario.js BOOTSTRAP [--json FILE]
//
// Produces, runs a group of two member processes (member.js), kills one with SIGKILL, checks that
// the survivor takes over at the committed offsets and that nothing is lost, stops the survivor
// cleanly, and checks that a new member resumes exactly at the committed offsets. Each check is
// a named test; the results go to stdout ("PASS name" / "FAIL name: why", then
// "N passed, N failed") and, with --json, to FILE as {"tests":[{"name","ok","detail","secs"}]}.
// Exits 0 when every test passed, 1 otherwise. Every wait is for an event, bounded in time.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { spawn } = require('child_process');
const crypto = require('crypto');
const EventEmitter = require('events');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { Kafka, logLevel } = require('kafkajs');

const args = process.argv.slice(2);
const bootstrap = args[0];
const jsonOut = args.indexOf('--json') >= 0 ? args[args.indexOf('--json') + 1] : null;
if (!bootstrap) {
  console.error('usage: node scenario.js BOOTSTRAP [--json FILE]');
  process.exit(2);
}

const PARTITIONS = 4;
const BATCH1 = 500;
const BATCH2 = 500;
const BATCH3 = 200;
const WAIT_MS = 60000; // bound of every wait
const suffix = crypto.randomBytes(4).toString('hex');
const topic = `kjs-topic-${suffix}`;
const group = `kjs-group-${suffix}`;

const kafka = new Kafka({ clientId: 'kjs-scenario', brokers: [bootstrap], logLevel: logLevel.ERROR });
const admin = kafka.admin();
const producer = kafka.producer({ allowAutoTopicCreation: false });

// ------------------------------------------------------------------------------------------
// members: child processes reporting JSON lines; every line is an event on `bus`

const bus = new EventEmitter();
bus.setMaxListeners(100);
const members = [];

class Member {
  constructor(name) {
    this.name = name;
    this.assigned = null; // latest assignment
    this.joins = 0;
    this.msgs = []; // {p, o (number), v, afterJoin}
    this.committed = new Map(); // partition -> next offset (number)
    this.firstAfterJoin = new Map(); // partition -> first offset seen since the latest join
    this.stopped = false;
    this.exited = false;
    this.stderr = '';
    this.proc = spawn(process.execPath, [path.join(__dirname, 'member.js'), bootstrap, group, topic, name], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => this.onLine(line));
    this.proc.on('close', () => {
      this.exited = true;
      bus.emit('event', this, { ev: 'exit' });
    });
    members.push(this);
  }

  onLine(line) {
    let e;
    try {
      e = JSON.parse(line);
    } catch (_) {
      return;
    }
    if (e.ev === 'assigned') {
      this.assigned = e.partitions;
      this.joins += 1;
      this.firstAfterJoin = new Map();
    } else if (e.ev === 'msg') {
      const o = Number(e.o);
      this.msgs.push({ p: e.p, o, v: e.v });
      if (!this.firstAfterJoin.has(e.p)) this.firstAfterJoin.set(e.p, o);
    } else if (e.ev === 'committed') {
      this.committed.set(e.p, Math.max(this.committed.get(e.p) || 0, Number(e.o)));
    } else if (e.ev === 'stopped') {
      this.stopped = true;
    } else if (e.ev === 'crash') {
      this.crash = e.error;
    }
    bus.emit('event', this, e);
  }

  kill(signal) {
    if (!this.exited) this.proc.kill(signal);
  }
}

// Resolves when pred() holds, checked at once and after every member event; rejects after ms.
function until(pred, what, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const onEvent = () => {
      if (pred()) {
        cleanup();
        resolve();
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`));
    }, ms);
    const cleanup = () => {
      clearTimeout(timer);
      bus.removeListener('event', onEvent);
    };
    bus.on('event', onEvent);
  });
}

function killAll() {
  for (const m of members) m.kill('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

// ------------------------------------------------------------------------------------------
// tests

const results = [];
async function test(name, fn) {
  const start = Date.now();
  let ok = true;
  let detail = '';
  try {
    await fn();
  } catch (err) {
    ok = false;
    detail = err && err.message ? err.message : String(err);
  }
  const secs = (Date.now() - start) / 1000;
  results.push({ name, ok, detail, secs });
  console.log(ok ? `PASS ${name} (${secs.toFixed(1)} s)` : `FAIL ${name} (${secs.toFixed(1)} s): ${detail}`);
  return ok;
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const produced = new Map(); // value -> {p, o}
async function produce(from, count) {
  const messages = [];
  for (let i = from; i < from + count; i++) messages.push({ key: `k-${i}`, value: `m-${i}` });
  for (let i = 0; i < messages.length; i += 100) {
    const chunk = messages.slice(i, i + 100);
    const res = await producer.send({ topic, acks: -1, messages: chunk });
    check(res.every((r) => r.errorCode === 0), `produce errors: ${JSON.stringify(res)}`);
  }
}

async function highWatermarks() {
  const offs = await admin.fetchTopicOffsets(topic);
  const hw = new Map();
  for (const o of offs) hw.set(o.partition, Number(o.high));
  return hw;
}

async function groupOffsets() {
  const res = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const m = new Map();
  for (const p of res[0].partitions) m.set(p.partition, Number(p.offset));
  return m;
}

function seenValues() {
  const seen = new Set();
  for (const m of members) for (const r of m.msgs) seen.add(r.v);
  return seen;
}

function missing(from, to) {
  const seen = seenValues();
  const miss = [];
  for (let i = from; i < to; i++) if (!seen.has(`m-${i}`)) miss.push(i);
  return miss;
}

// the offset after the last record member `m` saw on partition p (0 when none)
function endOf(m, p) {
  let end = 0;
  for (const r of m.msgs) if (r.p === p && r.o + 1 > end) end = r.o + 1;
  return end;
}

function mapStr(m) {
  return JSON.stringify(Object.fromEntries([...m.entries()].sort((a, b) => a[0] - b[0])));
}

async function main() {
  const started = Date.now();
  let a, b, c;
  let hw;

  const setup = await test('create-topic', async () => {
    await admin.connect();
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    check(created === true, `createTopics returned ${created}`);
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    check(md.topics[0].partitions.length === PARTITIONS, `metadata shows ${md.topics[0].partitions.length} partitions`);
  });
  if (!setup) return finish(started);

  await test('produce-acks-all', async () => {
    await producer.connect();
    await produce(0, BATCH1);
    hw = await highWatermarks();
    const total = [...hw.values()].reduce((s, v) => s + v, 0);
    check(total === BATCH1, `high watermarks add up to ${total}, expected ${BATCH1}: ${mapStr(hw)}`);
  });

  await test('two-members-balanced', async () => {
    a = new Member('member-a');
    await until(() => a.assigned !== null, 'member-a to join');
    b = new Member('member-b');
    const balanced = () =>
      a.assigned &&
      b.assigned &&
      a.assigned.length > 0 &&
      b.assigned.length > 0 &&
      a.assigned.length + b.assigned.length === PARTITIONS &&
      new Set([...a.assigned, ...b.assigned]).size === PARTITIONS;
    await until(balanced, 'both members to share the partitions').catch((e) => {
      throw new Error(`${e.message}: a=${JSON.stringify(a.assigned)} b=${JSON.stringify(b.assigned)}`);
    });
  });

  await test('consume-and-commit', async () => {
    check(a && b, 'no group');
    const done = () =>
      missing(0, BATCH1).length === 0 &&
      [...hw.entries()].every(([p, h]) => Math.max(a.committed.get(p) || 0, b.committed.get(p) || 0) === h);
    await until(done, 'all records consumed and committed').catch((e) => {
      const commits = new Map();
      for (const p of hw.keys()) commits.set(p, Math.max(a.committed.get(p) || 0, b.committed.get(p) || 0));
      throw new Error(`${e.message}: missing ${missing(0, BATCH1).length}, committed ${mapStr(commits)}, hw ${mapStr(hw)}`);
    });
    const offs = await groupOffsets();
    check(mapStr(offs) === mapStr(hw), `OffsetFetch ${mapStr(offs)} != high watermarks ${mapStr(hw)}`);
  });

  const bCommitted = new Map(); // partition -> highest commit reported before the takeover
  const seenBefore = new Map(); // partition -> offset after the last record seen before it
  let bParts = [];
  await test('kill-member-rebalance', async () => {
    check(a && b, 'no group');
    const joinsBefore = a.joins;
    bParts = b.assigned.slice();
    await produce(BATCH1, BATCH2);
    hw = await highWatermarks();
    // SIGKILL member-b while it is consuming the second batch
    await until(() => b.msgs.some((r) => Number(r.v.slice(2)) >= BATCH1), 'member-b to consume from the second batch');
    b.kill('SIGKILL');
    await until(() => b.exited, 'member-b to exit');
    // what was committed and seen on each partition before the takeover: member-b's lines are
    // final (its stdout is closed); member-a's are taken now, 6 s before the session timeout
    // makes it rejoin. Both count: member-a may have owned a partition before member-b joined.
    for (const p of hw.keys()) {
      bCommitted.set(p, Math.max(b.committed.get(p) || 0, a.committed.get(p) || 0));
      seenBefore.set(p, Math.max(endOf(b, p), endOf(a, p)));
    }
    await until(
      () => a.joins > joinsBefore && a.assigned && a.assigned.length === PARTITIONS,
      'member-a to be assigned every partition after the session timeout',
    ).catch((e) => {
      throw new Error(`${e.message}: a=${JSON.stringify(a.assigned)} after ${a.joins - joinsBefore} joins`);
    });
  });

  await test('takeover-at-committed-offset', async () => {
    check(a && b && a.assigned && a.assigned.length === PARTITIONS, 'no takeover');
    // for each partition member-b owned: member-a's first record after its new assignment lies
    // between the last commit reported for it (lower: committed records delivered again) and
    // the record after the last one seen (higher: records lost). member-b may have been killed
    // after a commit landed and before it reported it, hence a range.
    const bad = [];
    for (const p of bParts) {
      const committed = bCommitted.get(p) || 0;
      const seenEnd = seenBefore.get(p);
      if (seenEnd >= hw.get(p) && committed >= hw.get(p)) continue; // nothing left to take over
      if (seenEnd >= hw.get(p) && !a.firstAfterJoin.has(p)) continue; // the kill came after a commit to the end
      await until(() => a.firstAfterJoin.has(p), `member-a to consume partition ${p}`).catch((e) => {
        throw new Error(`${e.message} (committed ${committed}, seen up to ${seenEnd}, hw ${hw.get(p)})`);
      });
      const first = a.firstAfterJoin.get(p);
      if (first < committed || first > seenEnd) {
        bad.push(`partition ${p}: first offset ${first}, committed ${committed}, seen up to ${seenEnd}`);
      }
    }
    check(bad.length === 0, bad.join('; '));
  });

  await test('no-loss-after-kill', async () => {
    check(a, 'no group');
    await until(() => missing(0, BATCH1 + BATCH2).length === 0, 'every record of both batches').catch((e) => {
      throw new Error(`${e.message}: ${missing(0, BATCH1 + BATCH2).length} missing`);
    });
  });

  await test('graceful-leave-commits', async () => {
    check(a, 'no group');
    await until(
      () =>
        [...hw.entries()].every(
          ([p, h]) => Math.max(endOf(a, p), endOf(b, p)) === h && (a.committed.get(p) || 0) >= endOf(a, p),
        ),
      'member-a to consume every partition to its end and commit what it consumed',
    );
    a.kill('SIGTERM');
    await until(() => a.exited, 'member-a to leave and exit');
    check(a.stopped, `member-a did not stop cleanly: ${a.crash || a.stderr.slice(-300)}`);
    const offs = await groupOffsets();
    check(mapStr(offs) === mapStr(hw), `OffsetFetch ${mapStr(offs)} != high watermarks ${mapStr(hw)}`);
  });

  await test('resume-new-member', async () => {
    const before = new Map(hw);
    await produce(BATCH1 + BATCH2, BATCH3);
    hw = await highWatermarks();
    c = new Member('member-c');
    await until(() => c.assigned && c.assigned.length === PARTITIONS, 'member-c to be assigned every partition');
    const expected = new Set();
    for (let i = BATCH1 + BATCH2; i < BATCH1 + BATCH2 + BATCH3; i++) expected.add(`m-${i}`);
    await until(
      () => [...hw.entries()].every(([p, h]) => (c.committed.get(p) || 0) === h),
      'member-c to consume and commit the third batch',
    ).catch((e) => {
      throw new Error(`${e.message}: member-c committed ${mapStr(c.committed)}, hw ${mapStr(hw)}`);
    });
    const got = c.msgs.map((r) => r.v);
    const old = got.filter((v) => !expected.has(v));
    const gotSet = new Set(got);
    const lost = [...expected].filter((v) => !gotSet.has(v));
    check(old.length === 0, `member-c got ${old.length} records committed before it joined (first: ${old[0]})`);
    check(lost.length === 0, `member-c missed ${lost.length} records of the third batch`);
    check(got.length === BATCH3, `member-c got ${got.length} records, expected ${BATCH3}`);
    for (const [p, first] of c.firstAfterJoin) {
      check(first === before.get(p), `partition ${p}: member-c started at ${first}, committed was ${before.get(p)}`);
    }
  });

  await test('describe-group', async () => {
    const { groups } = await admin.describeGroups([group]);
    const g = groups[0];
    check(g.errorCode === 0, `error code ${g.errorCode}`);
    check(g.state === 'Stable', `state ${g.state}`);
    check(g.protocolType === 'consumer', `protocol type ${g.protocolType}`);
    check(g.members.length === 1 && g.members[0].clientId === 'member-c', `members ${JSON.stringify(g.members.map((m) => m.clientId))}`);
  });

  if (c) {
    c.kill('SIGTERM');
    await until(() => c.exited, 'member-c to exit').catch(() => c.kill('SIGKILL'));
  }
  return finish(started);
}

async function finish(started) {
  killAll();
  await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ tests: results, secs: (Date.now() - started) / 1000 }, null, 1));
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(`scenario: ${err && err.stack ? err.stack : err}`);
  killAll();
  process.exit(2);
});
