// @platformatic/kafka against kbroker: admin topics, produce with every codec it supports on this
// Node (zstd needs Node >= 22.15), consume without groups via Consumer.fetch() (raw Fetch by topic id).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import zlib from 'node:zlib'
import { Admin, Producer, Consumer, stringSerializers, stringDeserializers } from '@platformatic/kafka'
import { BOOTSTRAP, uniq, kcatRead, kcatWrite, eventually } from '../helpers.mjs'

const bootstrapBrokers = [BOOTSTRAP]
const admin = new Admin({ clientId: 'compat-plt-admin', bootstrapBrokers })
const consumer = new Consumer({ clientId: 'compat-plt-fetch', groupId: 'unused-no-join', bootstrapBrokers,
  deserializers: stringDeserializers })
after(async () => { await consumer.close(true); await admin.close() })

function describe (e) {
  return JSON.stringify({ message: e.message, errors: (e.errors ?? []).map(x => ({ message: x.message, apiId: x.apiId, apiCode: x.apiCode })) })
}

const CODECS = ['none', 'gzip', 'snappy', 'lz4'].concat(typeof zlib.zstdCompressSync === 'function' ? ['zstd'] : [])
const CODEC_ID = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }

// Read a whole partition with raw Fetch requests (no group): returns [{offset, key, value, headers, attributes}]
async function fetchAll (topic, partition, until) {
  const md = await consumer.metadata({ topics: [topic] })
  const topicId = md.topics.get(topic).id
  const out = []
  let next = 0n
  for (let round = 0; round < 50 && next < until; round++) {
    const res = await consumer.fetch({ node: 1, maxWaitTime: 200, topics: [{ topicId, partitions: [{ partition,
      fetchOffset: next, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1, logStartOffset: -1n }] }] })
    assert.equal(res.errorCode, 0)
    const p = res.responses[0].partitions[0]
    assert.equal(p.errorCode, 0)
    for (const batch of p.records ?? []) {
      for (const r of batch.records) {
        const offset = batch.firstOffset + BigInt(r.offsetDelta)
        if (offset < next) continue
        out.push({ offset: Number(offset), key: r.key?.toString(), value: r.value?.toString(),
          headers: r.headers.map(([k, v]) => `${k}=${v}`).join(','), codec: batch.attributes & 7 })
        next = offset + 1n
      }
    }
  }
  return out
}

test('admin: create, list, delete topics (and errors)', async () => {
  const t = uniq('plt-adm')
  const created = await admin.createTopics({ topics: [t], partitions: 3, replicas: 1 })
  assert.equal(created.length, 1)
  assert.equal(created[0].name, t)
  assert.equal(created[0].partitions, 3)
  assert.match(created[0].id, /^[0-9a-f-]{36}$/)
  // Kafka answers CreateTopics before its broker lists the topic.
  await eventually(async () => assert.ok((await admin.listTopics()).includes(t)))
  // The client wraps per-topic errors in an AggregateError (ResponseError with .errors / findBy()).
  await assert.rejects(admin.createTopics({ topics: [t], partitions: 3, replicas: 1 }),
    e => { assert.ok(e.findBy?.('apiId', 'TOPIC_ALREADY_EXISTS'), `wanted TOPIC_ALREADY_EXISTS, got ${describe(e)}`); return true })
  await assert.rejects(admin.createTopics({ topics: [uniq('plt-rf')], partitions: 1, replicas: 3 }),
    e => { assert.ok(e.findBy?.('apiId', 'INVALID_REPLICATION_FACTOR'), `wanted INVALID_REPLICATION_FACTOR, got ${describe(e)}`); return true })
  await admin.deleteTopics({ topics: [t] })
  await eventually(async () => assert.ok(!(await admin.listTopics()).includes(t)))
})

for (const codec of CODECS) {
  test(`produce idempotent acks=all compression=${codec}; fetch back without a group; kcat agrees`, async () => {
    const t = uniq(`plt-${codec}`)
    await admin.createTopics({ topics: [t], partitions: 1, replicas: 1 })
    const producer = new Producer({ clientId: 'compat-plt-prod', bootstrapBrokers, serializers: stringSerializers,
      idempotent: true, acks: -1 })
    const N = 200
    try {
      let expectOffset = 0
      for (let b = 0; b < 4; b++) {
        const messages = Array.from({ length: N / 4 }, (_, j) => {
          const i = b * (N / 4) + j
          return { topic: t, partition: 0, key: `k${i}`, value: `value-${i}-` + 'z'.repeat(40), headers: { i: String(i) } }
        })
        const r = await producer.send({ compression: codec, messages })
        assert.deepEqual(r.offsets.map(o => [o.topic, o.partition, Number(o.offset)]), [[t, 0, expectOffset]])
        expectOffset += messages.length
      }
    } finally { await producer.close() }
    const got = await fetchAll(t, 0, BigInt(N))
    assert.equal(got.length, N)
    got.forEach((m, i) => {
      assert.deepEqual(m, { offset: i, key: `k${i}`, value: `value-${i}-` + 'z'.repeat(40), headers: `i=${i}`, codec: CODEC_ID[codec] })
    })
    const lines = kcatRead(t)
    assert.equal(lines.length, N)
    assert.equal(lines[7], `7|k7|value-7-${'z'.repeat(40)}|i=7`)
  })
}

test('listOffsets (earliest/latest)', async () => {
  const t = uniq('plt-lo')
  kcatWrite(t, ['a:1', 'b:2', 'c:3'])
  const latest = await consumer.listOffsets({ topics: [t] })
  assert.deepEqual(latest.get(t), [3n])
  const earliest = await consumer.listOffsets({ topics: [t], timestamp: -2n })
  assert.deepEqual(earliest.get(t), [0n])
})

test('consume stream with a consumer group', async () => {
  const t = uniq('plt-grp')
  kcatWrite(t, ['a:1', 'b:2', 'c:3'])
  const c = new Consumer({ clientId: 'compat-plt-grp', groupId: uniq('plt-g'), bootstrapBrokers, deserializers: stringDeserializers })
  try {
    const stream = await c.consume({ topics: [t], mode: 'earliest', autocommit: false })
    const got = []
    for await (const m of stream) {
      got.push(`${m.offset}|${m.key}|${m.value}`)
      if (got.length === 3) break
    }
    assert.deepEqual(got, ['0|a|1', '1|b|2', '2|c|3'])
  } finally { await c.close(true) }
})
