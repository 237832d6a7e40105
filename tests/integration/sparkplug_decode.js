#!/usr/bin/env node
// The independent side of test_sparkplug_tahu.cpp: Eclipse Tahu's own
// JavaScript codec (npm sparkplug-payload, installed by tools/setup into
// tests/npm) reads what gateway/sparkplug writes, and writes an NCMD for it.
//
//   sparkplug_decode.js < lines     each line TOPIC<TAB>BASE64; prints one
//                                   JSON line per message, exits 1 with the
//                                   line's number on a payload Tahu refuses
//   sparkplug_decode.js --encode-ncmd-rebirth
//                                   prints the base64 of a Tahu NCMD asking
//                                   for a rebirth
//
// Data messages name a metric by alias and carry no datatype (as Sparkplug
// 3.0 recommends), and Tahu's decodePayload then gives no value. So, as a
// host does, the aliases' names and datatypes are learnt from the births
// seen before, and the payload is decoded a second time by Tahu with the
// learnt datatypes put in. Each metric says what was on the wire (name,
// type: null when absent; field: the oneof member set; wire: its value) and
// what it means (born: the birth's name, value: Tahu's reading).
'use strict';

const path = require('path');
const modules = path.join(__dirname, '..', 'npm', 'node_modules');
let sparkplug, proto, Long;
try {
  sparkplug = require(path.join(modules, 'sparkplug-payload')).get('spBv1.0');
  proto = require(path.join(modules, 'sparkplug-payload', 'lib', 'sparkplugPayloadProto'));
  Long = require(path.join(modules, 'long'));
} catch (e) {
  process.stderr.write("sparkplug_decode: Tahu's codec is not installed in tests/npm (run tools/setup): " +
                       `${e.message}\n`);
  process.exit(2);
}
const Payload = proto.org.eclipse.tahu.protobuf.Payload;

const TYPES = [
  'Unknown', 'Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float', 'Double',
  'Boolean', 'String', 'DateTime', 'Text', 'UUID', 'DataSet', 'Bytes', 'File', 'Template', 'PropertySet',
  'PropertySetList',
];

// Longs as numbers while exact, else as decimal strings; bytes as base64.
function plain(v) {
  if (v === undefined) return null;
  if (Long.isLong(v)) {
    const exact = v.lessThanOrEqual(Number.MAX_SAFE_INTEGER) && v.greaterThanOrEqual(Number.MIN_SAFE_INTEGER);
    return exact ? v.toNumber() : v.toString();
  }
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return v;
}

function encodeNcmdRebirth() {
  const bytes = sparkplug.encodePayload({
    timestamp: Date.now(),
    metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }],
  });
  process.stdout.write(Buffer.from(bytes).toString('base64') + '\n');
}

// What the births said, per edge node ("group/edge"): alias -> {name, datatype}.
const births = new Map();

function decodeLine(topic, buf) {
  const parts = topic.split('/');
  if (parts.length < 4 || parts[0] !== 'spBv1.0') throw new Error(`not a Sparkplug B topic: ${topic}`);
  const type = parts[2];
  const edge = `${parts[1]}/${parts[3]}`;
  if (type === 'NBIRTH') births.set(edge, new Map());
  const aliases = births.get(edge) || new Map();

  const tahu = sparkplug.decodePayload(buf);  // Tahu's reading, as it is
  const raw = Payload.decode(buf);            // the same bytes with Tahu's generated protobuf code
  const metrics = tahu.metrics || [];
  if (metrics.length !== raw.metrics.length) throw new Error('Tahu and its protobuf code disagree on the metric count');

  let learnt = metrics;
  if (type.endsWith('BIRTH')) {
    raw.metrics.forEach((m) => {
      if (m.hasOwnProperty('alias')) aliases.set(plain(m.alias), { name: m.name, datatype: m.datatype });
    });
    births.set(edge, aliases);
  } else if (raw.metrics.some((m) => !m.hasOwnProperty('datatype'))) {
    const patched = Payload.decode(buf);
    patched.metrics.forEach((m) => {
      const born = m.hasOwnProperty('alias') ? aliases.get(plain(m.alias)) : undefined;
      if (!m.hasOwnProperty('datatype') && born) m.datatype = born.datatype;
    });
    learnt = sparkplug.decodePayload(Payload.encode(patched).finish()).metrics;
  }

  const out = {
    topic,
    seq: plain(tahu.seq),
    timestamp: plain(tahu.timestamp),
    metrics: metrics.map((m, i) => {
      const r = raw.metrics[i];
      const alias = r.hasOwnProperty('alias') ? plain(r.alias) : null;
      const born = alias !== null && aliases.has(alias) ? aliases.get(alias) : null;
      const field = r.value || null;  // the oneof member on the wire
      const unit = m.properties && m.properties.engUnit ? m.properties.engUnit.value : null;
      return {
        born: born ? born.name : plain(m.name),
        name: plain(m.name),
        alias,
        type: r.hasOwnProperty('datatype') ? plain(m.type) : null,
        bornType: born ? TYPES[born.datatype] || String(born.datatype) : null,
        value: plain(learnt[i].value),
        isNull: r.isNull === true,
        isHistorical: m.isHistorical === true,
        timestamp: plain(m.timestamp),
        field,
        wire: field ? plain(r[field]) : null,
        engUnit: unit,
      };
    }),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function main() {
  if (process.argv[2] === '--encode-ncmd-rebirth') return encodeNcmdRebirth();
  if (process.argv.length > 2) {
    process.stderr.write('usage: sparkplug_decode.js [--encode-ncmd-rebirth] < TOPIC<TAB>BASE64 lines\n');
    process.exit(2);
  }
  const lines = require('fs').readFileSync(0, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const tab = line.indexOf('\t');
    if (tab < 0) {
      process.stderr.write(`sparkplug_decode: line ${i + 1}: no TAB between topic and payload\n`);
      process.exit(1);
    }
    const topic = line.slice(0, tab);
    try {
      decodeLine(topic, Buffer.from(line.slice(tab + 1), 'base64'));
    } catch (e) {
      process.stderr.write(`sparkplug_decode: line ${i + 1} (${topic}): Tahu cannot decode it: ${e.message}\n`);
      process.exit(1);
    }
  });
}

main();
