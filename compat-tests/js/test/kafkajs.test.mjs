// KafkaJS 2.2.4 against kbroker: admin topics, idempotent/gzip produce (checked with kcat),
// offsets by timestamp; consuming needs consumer groups (KafkaJS has no assign() API).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Kafka, logLevel, CompressionTypes } from 'kafkajs'
import { BOOTSTRAP, uniq, kcatRead, kcatWrite, eventually, createTopicsReady } from '../helpers.mjs'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const kafka = new Kafka({ clientId: 'compat-kafkajs', brokers: [BOOTSTRAP], logLevel: logLevel.NOTHING,
  retry: { retries: 3, initialRetryTime: 100 } })
const admin = kafka.admin()
await admin.connect()
after(async () => { await admin.disconnect() })

test('admin: create, list, describe, delete topics', async () => {
  const t = uniq('kjs-adm')
  assert.equal(await createTopicsReady(admin, { topics: [{ topic: t, numPartitions: 3 }] }), true)
  assert.ok((await admin.listTopics()).includes(t))
  const md = await admin.fetchTopicMetadata({ topics: [t] })
  assert.equal(md.topics[0].partitions.length, 3)
  assert.deepEqual(md.topics[0].partitions.map(p => p.leader), [1, 1, 1])
  // Already exists: KafkaJS returns false (not an error) for TOPIC_ALREADY_EXISTS.
  assert.equal(await admin.createTopics({ topics: [{ topic: t, numPartitions: 3 }] }), false)
  await assert.rejects(admin.createTopics({ topics: [{ topic: uniq('kjs-bad'), numPartitions: 1, replicationFactor: 3 }] }),
    e => /replication/i.test(e.message) || /INVALID_REPLICATION_FACTOR/.test(JSON.stringify(e.errors ?? e.type)))
  await admin.deleteTopics({ topics: [t] })
  await eventually(async () => assert.ok(!(await admin.listTopics()).includes(t)))
  // KafkaJS's describeCluster() is Metadata-based (not the DescribeCluster API); it must list our one broker.
  const cluster = await admin.describeCluster()
  assert.deepEqual(cluster.brokers.map(b => [b.nodeId, b.host, b.port]), [[1, '127.0.0.1', Number(BOOTSTRAP.split(':')[1])]])
  assert.equal(cluster.controller, 1)
})

for (const [name, compression] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
  test(`produce (idempotent, acks=all, ${name}) and read back with kcat`, async () => {
    const t = uniq(`kjs-${name}`)
    await createTopicsReady(admin, { topics: [{ topic: t, numPartitions: 2 }] })
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      const msgs = Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: `v-${i}-` + 'x'.repeat(50),
        headers: { n: String(i), src: 'kafkajs' }, partition: i % 2 }))
      const res = await producer.send({ topic: t, acks: -1, compression, messages: msgs })
      assert.deepEqual(res.map(r => [r.partition, r.errorCode, r.baseOffset]).sort(), [[0, 0, '0'], [1, 0, '0']])
      const res2 = await producer.send({ topic: t, acks: -1, compression, messages: [{ key: 'last', value: 'L', partition: 0 }] })
      assert.equal(res2[0].baseOffset, '250')
    } finally {
      await producer.disconnect()
    }
    const p0 = kcatRead(t, 0)
    assert.equal(p0.length, 251)
    for (let j = 0; j < 250; j++) {
      const i = j * 2
      assert.equal(p0[j], `${j}|k${i}|v-${i}-${'x'.repeat(50)}|n=${i},src=kafkajs`)
    }
    assert.equal(p0[250], '250|last|L|')
    assert.equal(kcatRead(t, 1).length, 250)
    const offs = await admin.fetchTopicOffsets(t)
    assert.deepEqual(offs.map(o => [o.partition, o.low, o.high]).sort(), [[0, '0', '251'], [1, '0', '250']])
  })
}

test('offsets by timestamp', async () => {
  const t = uniq('kjs-ts')
  await createTopicsReady(admin, { topics: [{ topic: t, numPartitions: 1 }] })
  const producer = kafka.producer()
  await producer.connect()
  const base = Date.now() - 60000
  try {
    for (let i = 0; i < 10; i++) {
      await producer.send({ topic: t, acks: -1, messages: [{ value: `v${i}`, timestamp: String(base + i * 1000) }] })
    }
  } finally { await producer.disconnect() }
  const r = await admin.fetchTopicOffsetsByTimestamp(t, base + 3500)
  assert.deepEqual(r, [{ partition: 0, offset: '4' }])
})

test('consume with a consumer (group-based)', async () => {
  const t = uniq('kjs-cons')
  kcatWrite(t, ['a:1', 'b:2', 'c:3'])
  const consumer = kafka.consumer({ groupId: uniq('kjs-g') })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: t, fromBeginning: true })
    const got = []
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout, got ${JSON.stringify(got)}`)), 20000)
      consumer.run({ eachMessage: async ({ message }) => {
        got.push(`${message.offset}|${message.key}|${message.value}`)
        if (got.length === 3) { clearTimeout(timer); resolve() }
      } }).catch(reject)
    })
    assert.deepEqual(got, ['0|a|1', '1|b|2', '2|c|3'])
  } finally { await consumer.disconnect() }
})

test('admin: delete records, create partitions, describe and alter configs', async () => {
  const t = uniq('kjs-recs')
  await createTopicsReady(admin, { topics: [{ topic: t, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })
  kcatWrite(t, Array.from({ length: 10 }, (_, i) => `k${i}:v${i}`), 0)
  // DeleteRecords moves the log start offset; the records below it are gone for readers.
  // (KafkaJS's deleteTopicRecords needs the topic's metadata loaded first.)
  await admin.fetchTopicMetadata({ topics: [t] })
  await admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '4' }] })
  const offs = await admin.fetchTopicOffsets(t)
  assert.deepEqual(offs.map(o => [o.partition, o.low, o.high]), [[0, '4', '10']])
  assert.deepEqual(kcatRead(t, 0).map(l => l.split('|')[0]), ['4', '5', '6', '7', '8', '9'])
  // Past the high watermark: refused (OFFSET_OUT_OF_RANGE).
  await assert.rejects(admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '99' }] }))
  // CreatePartitions grows the topic; a decrease is refused.
  await admin.createPartitions({ topicPartitions: [{ topic: t, count: 3 }] })
  await eventually(async () => {
    const md = await admin.fetchTopicMetadata({ topics: [t] })
    assert.equal(md.topics[0].partitions.length, 3)
  })
  await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: t, count: 2 }] }))
  // DescribeConfigs shows the override as a topic config; AlterConfigs replaces it.
  const cfgOf = async () => {
    const r = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: t }] })
    return Object.fromEntries(r.resources[0].configEntries.map(e => [e.configName, e]))
  }
  let cfg = await cfgOf()
  assert.equal(cfg['retention.ms'].configValue, '3600000')
  assert.equal(cfg['retention.ms'].isDefault, false)
  assert.equal(cfg['cleanup.policy'].configValue, 'delete')
  await admin.alterConfigs({ validateOnly: false,
    resources: [{ type: 2, name: t, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
  cfg = await cfgOf()
  assert.equal(cfg['cleanup.policy'].configValue, 'compact')
  assert.equal(cfg['retention.ms'].isDefault, true) // AlterConfigs replaces every override
  await assert.rejects(admin.alterConfigs({ validateOnly: false,
    resources: [{ type: 2, name: t, configEntries: [{ name: 'no.such.config', value: '1' }] }] }))
  await admin.deleteTopics({ topics: [t] })
})
