// KafkaJS and @platformatic/kafka cells of the security matrix (py/test_security_matrix.py drives them).
// Owns: a produce/consume round trip per client over SSL, mTLS, SASL_PLAINTEXT and SASL_SSL with PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512 against the listeners the driver passes in KB_SEC_* variables, one
// "SECCASE client listener mechanism PASS|FAIL|SKIP seconds detail" line per cell.
// Must not: run without those variables (run.sh's plain JS run leaves this file out), or decide what is an
// expected failure (the driver does, per target).
import { test } from 'node:test'
import { readFileSync } from 'node:fs'
import { Kafka, logLevel } from 'kafkajs'
import { Admin, Producer, Consumer, stringSerializers, stringDeserializers } from '@platformatic/kafka'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const env = process.env
const CELLS = [['SSL', '-'], ['MTLS', '-'], ['SASL_PLAINTEXT', 'PLAIN'], ['SASL_SSL', 'PLAIN'],
  ['SASL_PLAINTEXT', 'SCRAM-SHA-256'], ['SASL_SSL', 'SCRAM-SHA-256'],
  ['SASL_PLAINTEXT', 'SCRAM-SHA-512'], ['SASL_SSL', 'SCRAM-SHA-512']]

const uniq = prefix => `${prefix}-${Math.random().toString(16).slice(2, 10)}`

function want (client, listener, mech) {
  return [0, 1, 2].map(i => ({ key: `k${i}`, value: `${client} ${listener} ${mech} #${i}`, headers: [`i=${i}`, `via=${listener}`] }))
}

function tlsOptions (listener) {
  if (listener === 'SASL_PLAINTEXT') return null
  const o = { ca: [readFileSync(env.KB_SEC_CA)] }
  if (listener === 'MTLS') Object.assign(o, { cert: readFileSync(env.KB_SEC_CLIENT_CERT), key: readFileSync(env.KB_SEC_CLIENT_KEY) })
  return o
}

function cred (mech) {
  const s = env[`KB_SEC_CRED_${mech.replaceAll('-', '_')}`]
  const i = s.indexOf(':')
  return { username: s.slice(0, i), password: s.slice(i + 1) }
}

function names (client, listener, mech) {
  const tag = `${client}-${listener}-${mech}`.toLowerCase().replaceAll('_', '-')
  const u = uniq('')
  return [`sec-${tag}${u}`, `secg-${tag}${u}`]
}

function check (got, exp, what) {
  const a = JSON.stringify(got)
  const b = JSON.stringify(exp)
  if (a !== b) throw new Error(`${what}: read back ${a}, wanted ${b}`)
}

function withTimeout (p, ms, what) {
  let timer
  return Promise.race([p, new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
  })]).finally(() => clearTimeout(timer))
}

async function untilServed (fn, ms = 20000) {
  const end = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (e) {
      if (Date.now() > end || !/does not host this topic-partition|not the leader/i.test(String(e?.message))) throw e
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }
}

async function kafkajs (listener, mech) {
  const conf = { clientId: 'compat-sec-kafkajs', brokers: [env[`KB_SEC_BOOTSTRAP_${listener}`]], logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 }, connectionTimeout: 10000 }
  const tls = tlsOptions(listener)
  if (tls) conf.ssl = tls
  if (mech !== '-') conf.sasl = { mechanism: mech.toLowerCase(), ...cred(mech) }
  const kafka = new Kafka(conf)
  const [topic, groupId] = names('kafkajs', listener, mech)
  const exp = want('kafkajs', listener, mech)
  const admin = kafka.admin()
  await admin.connect()
  try {
    // Kafka answers CreateTopics before its broker knows the topic; KafkaJS's own waitForLeaders (on unless
    // turned off) rethrows the UNKNOWN_TOPIC_OR_PARTITION seen meanwhile, so turn it off and wait here (bounded).
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: false })
    const end = Date.now() + 20000
    for (;;) {
      const p = await admin.fetchTopicMetadata({ topics: [topic] }).then(m => m.topics[0]?.partitions, () => null)
      if (p?.length === 1 && p[0].leader >= 0) break
      if (Date.now() > end) throw new Error(`no leader for ${topic}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  } finally { await admin.disconnect() }
  // Even with leaders in its metadata, a loaded Kafka can answer the first requests for a new topic with
  // UNKNOWN_TOPIC_OR_PARTITION for a moment (its partitions are created after its metadata cache has them),
  // and KafkaJS fails some paths at once: send again, bounded, as a patient client would.
  await untilServed(async () => {
    const producer = kafka.producer()
    await producer.connect()
    try {
      await producer.send({ topic, acks: -1, messages: exp.map(r => ({ key: r.key, value: r.value, partition: 0,
        headers: Object.fromEntries(r.headers.map(h => h.split('='))) })) })
    } finally { await producer.disconnect() }
  })
  await untilServed(async () => {
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 })
    await consumer.connect()
    try {
      await consumer.subscribe({ topic, fromBeginning: true })
      const got = []
      let last = -1
      await withTimeout(new Promise((resolve, reject) => {
        consumer.run({
          autoCommit: false,
          eachMessage: async ({ message }) => {
            got.push({ key: message.key.toString(), value: message.value.toString(),
              headers: Object.entries(message.headers).map(([k, v]) => `${k}=${v}`) })
            last = Number(message.offset)
            if (got.length >= exp.length) resolve()
          }
        }).catch(reject)
      }), 40000, `group ${groupId}`)
      check(got, exp, `group ${groupId}`)
      await consumer.commitOffsets([{ topic, partition: 0, offset: String(last + 1) }])
    } finally { await consumer.disconnect() }
  })
}

async function platformatic (listener, mech) {
  const base = { bootstrapBrokers: [env[`KB_SEC_BOOTSTRAP_${listener}`]], retries: 10, connectTimeout: 10000 }
  const tls = tlsOptions(listener)
  if (tls) base.tls = tls
  if (mech !== '-') base.sasl = { mechanism: mech, ...cred(mech) }
  const [topic, groupId] = names('platformatic', listener, mech)
  const exp = want('platformatic', listener, mech)
  const admin = new Admin({ clientId: 'compat-sec-plt-admin', ...base })
  try {
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
    // Kafka answers CreateTopics before the partition has a leader.
    const end = Date.now() + 20000
    for (;;) {
      const p = (await admin.metadata({ topics: [topic] })).topics.get(topic)?.partitions
      if (p?.length === 1 && p[0].leader >= 0) break
      if (Date.now() > end) throw new Error(`no leader for ${topic}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  } finally { await admin.close() }
  const producer = new Producer({ clientId: 'compat-sec-plt-prod', ...base, serializers: stringSerializers, acks: -1 })
  try {
    await producer.send({ messages: exp.map(r => ({ topic, partition: 0, key: r.key, value: r.value,
      headers: Object.fromEntries(r.headers.map(h => h.split('='))) })) })
  } finally { await producer.close() }
  const consumer = new Consumer({ clientId: 'compat-sec-plt-cons', groupId, ...base, deserializers: stringDeserializers,
    maxWaitTime: 200 })
  let stream = null
  try {
    stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
    const got = []
    await withTimeout(new Promise((resolve, reject) => {
      stream.on('error', reject)
      let commits = 0
      stream.on('data', m => {
        got.push({ key: m.key, value: m.value, headers: [...m.headers].map(([k, v]) => `${k}=${v}`) })
        m.commit(err => {
          if (err) reject(err)
          else if (++commits === exp.length) resolve()
        })
      })
    }), 40000, `group ${groupId}`)
    check(got, exp, `group ${groupId}`)
  } finally {
    // An open stream keeps its fetch connection past close(): close the stream first.
    if (stream) await stream.close()
    await consumer.close(true)
  }
}

const CLIENTS = { kafkajs, platformatic }

if (!env.KB_SEC_CA) {
  test('security matrix', { skip: 'run by py/test_security_matrix.py, which starts a secured target and sets KB_SEC_*' }, () => {})
} else {
  const only = env.KB_SEC_CASES ? env.KB_SEC_CASES.split(',') : null
  // One parent so that the cells run 4 at a time (top-level tests of a file run one by one).
  test('security matrix', { concurrency: 4 }, async t => {
    const cells = []
    for (const [client, fn] of Object.entries(CLIENTS)) {
      for (const [listener, mech] of CELLS) {
        if (!only || only.includes(`${listener}/${mech}`)) cells.push([client, fn, listener, mech])
      }
    }
    await Promise.all(cells.map(([client, fn, listener, mech]) => t.test(`${client} ${listener} ${mech}`, async () => {
      const t0 = Date.now()
      let status = 'PASS'
      let detail = ''
      try {
        await withTimeout(fn(listener, mech), 55000, 'round trip')
      } catch (e) {
        status = 'FAIL'
        detail = `${e.name}: ${e.message} ${(e.errors ?? []).map(x => x.message).join('; ')} ${e.cause?.message ?? ''}`.split(/\s+/).join(' ')
        throw e
      } finally {
        console.log(`SECCASE ${client} ${listener} ${mech} ${status} ${((Date.now() - t0) / 1000).toFixed(1)}s ${detail}`)
      }
    })))
  })
}
