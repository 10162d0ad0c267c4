// Shared helpers for the JS compat tests. The broker is started by ../lib/with_broker.py (or, with
// run.sh --target, is the target broker), which exports KB_BOOTSTRAP=<host>:<port> and KB_TARGET.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export const BOOTSTRAP = process.env.KB_BOOTSTRAP
if (!BOOTSTRAP) throw new Error('KB_BOOTSTRAP not set: run through compat-tests/lib/with_broker.py')

// kbroker, kafka (the reference Apache Kafka) or external: `test(name, { skip: kbrokerOnly('why') }, fn)`
// for a test that checks kbroker itself.
export const TARGET = process.env.KB_TARGET || 'kbroker'
export function kbrokerOnly (reason) {
  return TARGET === 'kbroker' ? false : `kbroker only: ${reason}`
}

export function uniq (prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

// Read a topic partition with kcat (independent client) and return parsed lines.
export function kcatRead (topic, partition = 0) {
  const r = spawnSync('kcat', ['-b', BOOTSTRAP, '-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e',
    '-f', '%o|%k|%s|%h\n'], { encoding: 'utf8', timeout: 30000 })
  if (r.status !== 0) throw new Error(`kcat failed (${r.status}): ${r.stderr}`)
  return r.stdout.split('\n').filter(Boolean)
}

export function kcatWrite (topic, lines, partition = 0) {
  const r = spawnSync('kcat', ['-b', BOOTSTRAP, '-P', '-t', topic, '-p', String(partition), '-K', ':'],
    { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 30000 })
  if (r.status !== 0) throw new Error(`kcat failed (${r.status}): ${r.stderr}`)
}

export async function eventually (fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs
  for (;;) {
    try { return await fn() } catch (e) { if (Date.now() > end) throw e }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

// KafkaJS's admin.createTopics, then a bounded wait until metadata shows every partition with a leader.
// Its own waitForLeaders gives up on the UNKNOWN_TOPIC_OR_PARTITION a loaded Kafka answers between
// CreateTopics and its broker knowing the topic. Returns what createTopics returned.
export async function createTopicsReady (admin, opts, timeoutMs = 20000) {
  const created = await admin.createTopics({ ...opts, waitForLeaders: false })
  const names = opts.topics.map(t => t.topic)
  const end = Date.now() + timeoutMs
  for (;;) {
    const md = await admin.fetchTopicMetadata({ topics: names }).catch(() => null)
    if (md && md.topics.length === names.length && md.topics.every(t =>
      t.partitions.length === opts.topics.find(x => x.topic === t.name).numPartitions &&
      t.partitions.every(p => p.leader >= 0))) return created
    if (Date.now() > end) throw new Error(`no leader for all partitions of ${names.join(', ')} after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}
