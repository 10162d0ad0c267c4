// Owns: one line per top-level test with its file, for compat-tests/lib/report.py (run.sh runs every JS
// file in one `node --test`, whose TAP output does not say which file a test came from).
// Must not: replace the TAP output in the logs (run.sh keeps both reporters).
import { basename } from 'node:path'

export default async function * fileReporter (source) {
  for await (const ev of source) {
    if ((ev.type !== 'test:pass' && ev.type !== 'test:fail') || ev.data.nesting !== 0) continue
    const file = ev.data.file ? basename(ev.data.file) : '?'
    const name = String(ev.data.name).replace(/\s+/g, ' ')
    let status = ev.type === 'test:pass' ? 'pass' : 'fail'
    let reason = ''
    if (ev.data.skip !== undefined && ev.data.skip !== false) {
      status = 'skip'
      reason = ev.data.skip === true ? '' : String(ev.data.skip).replace(/\s+/g, ' ')
    }
    yield `JSRESULT\t${status}\t${file}\t${name}\t${reason}\n`
  }
}
