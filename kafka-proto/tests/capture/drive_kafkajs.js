#!/usr/bin/env node
// Run the KafkaJS scenarios of scenarios.json against the fake broker.
// Needs `npm install` in this directory (kafkajs pinned in package.json).
// Usage: node drive_kafkajs.js PORT RUNS_JSONL
// Appends one JSON line per run (client name/version, settings, status) to RUNS_JSONL.
'use strict'
const fs = require('fs')
const path = require('path')
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')
const kafkajsVersion = require('kafkajs/package.json').version

const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }

async function runOne(port, scen, run) {
  const kafka = new Kafka({
    clientId: run.id,
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.WARN,
  })
  const producerOpts = { allowAutoTopicCreation: true }
  if (run.idempotent) Object.assign(producerOpts, { idempotent: true, maxInFlightRequests: 1 })
  const producer = kafka.producer(producerOpts)
  const records = scen.record_sets[run.records].records
  const messages = records.map(r => {
    const headers = {}
    for (const [k, v] of r.headers) headers[k] = v // insertion order = wire order
    return {
      key: r.key, // null stays null
      value: r.value,
      headers,
      partition: scen.partition,
      timestamp: String(r.timestamp),
    }
  })
  const send = {
    topic: scen.topic,
    messages,
    acks: run.acks,
    timeout: run.timeout_ms,
    compression: CODECS[run.codec],
  }
  await producer.connect()
  try {
    const res = await producer.send(send)
    process.stderr.write(`[kafkajs] ${run.id}: ${JSON.stringify(res)}\n`)
  } finally {
    await producer.disconnect()
  }
  return { producerOpts, send: { ...send, messages: undefined } }
}

async function main() {
  const [port, runsPath] = process.argv.slice(2)
  const scen = JSON.parse(fs.readFileSync(path.join(__dirname, 'scenarios.json'), 'utf8'))
  let failed = false
  for (const run of scen.runs) {
    if (run.client !== 'kafkajs') continue
    let status = 'ok'
    let settings = null
    try {
      settings = await runOne(port, scen, run)
    } catch (e) {
      status = `error: ${e && e.stack ? e.stack : e}`
      failed = true
    }
    fs.appendFileSync(runsPath, JSON.stringify({
      run: run.id, client_name: 'kafkajs', client_version: kafkajsVersion,
      settings, explicit_partition: scen.partition, status,
    }) + '\n')
  }
  process.exit(failed ? 1 : 0)
}

main()
