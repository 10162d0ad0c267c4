// KafkaJS 2.2.4 consumer groups against kbroker: three members share six partitions (each owned
// once), one disconnecting moves its partitions, every message is consumed; admin listGroups,
// describeGroups, fetchOffsets, deleteGroups.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Kafka, logLevel } from 'kafkajs'
import { BOOTSTRAP, uniq, eventually, createTopicsReady } from '../helpers.mjs'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const kafka = new Kafka({ clientId: 'compat-kafkajs-groups', brokers: [BOOTSTRAP], logLevel: logLevel.NOTHING,
  retry: { retries: 8, initialRetryTime: 100 } })
const admin = kafka.admin()
await admin.connect()
after(async () => { await admin.disconnect() })

const NPART = 6
const N = 3000

test('three members, a leave moves partitions, all messages consumed; admin group APIs', { timeout: 90000 }, async () => {
  const topic = uniq('kjs-grp')
  const groupId = uniq('kjs-g')
  await createTopicsReady(admin, { topics: [{ topic, numPartitions: NPART }] })
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: Array.from({ length: N }, (_, i) => ({ value: `m${i}`, partition: i % NPART })) })
  await producer.disconnect()

  const seen = new Set()
  const owned = new Map()
  const consumers = []
  for (let i = 0; i < 3; i++) {
    const c = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000 })
    await c.connect()
    c.on(c.events.GROUP_JOIN, e => {
      owned.set(i, (e.payload.memberAssignment[topic] ?? []).slice().sort())
    })
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ partition, message }) => {
      seen.add(`${partition}:${message.offset}`)
      await new Promise(resolve => setTimeout(resolve, 2))
    } })
    consumers.push(c)
  }
  const partitioned = members => {
    const all = members.flatMap(i => owned.get(i) ?? [])
    assert.equal(all.length, NPART, JSON.stringify([...owned]))
    assert.deepEqual([...new Set(all)].sort(), [0, 1, 2, 3, 4, 5])
  }
  await eventually(() => partitioned([0, 1, 2]), 30000)

  const groups = (await admin.listGroups()).groups
  assert.ok(groups.some(g => g.groupId === groupId && g.protocolType === 'consumer'))
  const desc = (await admin.describeGroups([groupId])).groups[0]
  assert.equal(desc.protocolType, 'consumer')
  assert.equal(desc.members.length, 3)

  await consumers[0].disconnect()
  owned.delete(0)
  await eventually(() => partitioned([1, 2]), 30000)
  await eventually(() => assert.equal(seen.size, N), 60000)
  for (const c of consumers.slice(1)) await c.disconnect()

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.deepEqual(offsets[0].partitions.map(p => p.offset).sort(), Array(NPART).fill(String(N / NPART)))
  await admin.deleteGroups([groupId])
  await eventually(async () => assert.ok(!(await admin.listGroups()).groups.some(g => g.groupId === groupId)))
})
