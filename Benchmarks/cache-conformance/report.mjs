// Benchmarks/cache-conformance/report.mjs - the report of Benchmarks/cache-conformance.sh for the
// official HTTP WG cache-tests suite (github.com/http-tests/cache-tests).
//
//   node report.mjs SUITE_DIR WORK PROXY...
//
// SUITE_DIR is the suite's tree the run used (its tests/index.mjs gives each test's suite, kind,
// name and dependencies; its test-engine/lib/results.mjs classifies a result the way the suite's
// own cli and cache-tests.fyi do). WORK/PROXY.json is the suite cli's output for that proxy: an
// object test id -> true (passed) or [error name, message] (failed; "Setup" when a step the test
// relies on failed, "Assertion" when the behaviour under test was wrong).
// Env: NOTRUN_ENV: lines "proxy=reason" for proxies that have no results;
//      FAILURES=required|all|none: which failed tests to list per proxy (default required).
//
// Prints a table (tests passed per suite file and proxy), the listed failures, and per proxy a
// BREAKDOWN line and `CONFORMANCE NAME: P/T passed, R/RT required`. Counting: a test passed when
// the cli recorded `true` for it, whatever its dependencies did (cache-tests.fyi would show a test
// whose dependency failed as "dependency failed" instead); T is the number of tests the cli ran
// (the browser-only ones are not run against a proxy); a test without a kind is required, as in
// the suite. Writes WORK/PROXY.tests.json (one record per test: id, suite, kind, name, depends_on,
// result class, message) and WORK/PROXY.failures.txt (every test that did not pass).
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, work, ...proxies] = process.argv.slice(2)
const failuresMode = process.env.FAILURES || 'required'
const notrun = Object.fromEntries((process.env.NOTRUN_ENV || '').split('\n')
  .filter(line => line.includes('=')).map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))

const suites = (await import(pathToFileURL(path.join(suiteDir, 'tests/index.mjs')).href)).default
const { determineTestResult } = await import(pathToFileURL(path.join(suiteDir, 'test-engine/lib/results.mjs')).href)

const meta = new Map() // id -> { suite, kind, name, depends_on }
for (const suite of suites) {
  for (const test of suite.tests) {
    meta.set(test.id, { suite: suite.id, kind: test.kind || 'required', name: test.name, depends_on: test.depends_on || [] })
  }
}
// The suite's names are Markdown; one line of plain text for the report.
const plain = text => String(text).replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '').replace(/\s+/g, ' ').trim()
// The suite's result classes (resultTypes in test-engine/lib/results.mjs), by their text symbol.
const classBySymbol = { '✅': 'pass', '⛔️': 'fail', '⚠️': 'optional_fail', Y: 'yes', N: 'no', '🔹': 'setup_fail', '⁉️': 'harness_fail', '⚪️': 'dependency_fail', '↻': 'retry', '-': 'untested' }

const results = {}
for (const p of proxies) {
  const file = path.join(work, `${p}.json`)
  if (!(p in notrun) && fs.existsSync(file)) results[p] = JSON.parse(fs.readFileSync(file, 'utf8'))
}

// per proxy: records, counts
const summary = {}
for (const [p, res] of Object.entries(results)) {
  const records = []
  const s = { total: 0, passed: 0, required: 0, requiredPassed: 0, optimal: 0, optimalPassed: 0, check: 0, checkYes: 0, setup: 0, harness: 0, unknown: 0 }
  for (const [id, value] of Object.entries(res)) {
    const m = meta.get(id)
    if (!m) { s.unknown++; continue }
    const cls = classBySymbol[determineTestResult(suites, id, res, false)[2]] || 'unknown'
    const withDeps = classBySymbol[determineTestResult(suites, id, res, true)[2]] || 'unknown'
    const passed = value === true
    records.push({ id, suite: m.suite, kind: m.kind, name: plain(m.name), depends_on: m.depends_on, result: cls, result_with_dependencies: withDeps, error: passed ? null : value[0], message: passed ? null : value[1] })
    s.total++
    if (passed) s.passed++
    if (m.kind === 'required') { s.required++; if (passed) s.requiredPassed++ }
    if (m.kind === 'optimal') { s.optimal++; if (passed) s.optimalPassed++ }
    if (m.kind === 'check') { s.check++; if (passed) s.checkYes++ }
    if (!passed && value[0] === 'Setup') s.setup++
    if (cls === 'harness_fail') s.harness++
  }
  summary[p] = s
  fs.writeFileSync(path.join(work, `${p}.tests.json`), JSON.stringify(records, null, 2) + '\n')
  const failed = records.filter(r => r.error !== null)
  fs.writeFileSync(path.join(work, `${p}.failures.txt`), failed.map(failureLine).join('\n') + (failed.length ? '\n' : ''))
  records.forEach(r => { r.proxy = p })
  summary[p].records = records
}

function failureLine (r) {
  const deps = r.result_with_dependencies === 'dependency_fail' ? ` [a dependency failed: ${r.depends_on.join(', ')}]` : ''
  return `${r.id} | ${r.kind} | ${r.result} | ${r.name} | ${r.error}: ${r.message}${deps}`
}

const ran = Object.keys(results)
if (ran.length) {
  // table: one row per suite file, in the suite's order
  const header = ['suite file', 'tests', 'required', ...proxies]
  const rows = [header]
  const totals = { tests: 0, required: 0 }
  const perProxyTotals = Object.fromEntries(proxies.map(p => [p, [0, 0]]))
  for (const suite of suites) {
    const ids = new Set()
    for (const p of ran) for (const id of Object.keys(results[p])) if (meta.get(id)?.suite === suite.id) ids.add(id)
    if (!ids.size) continue
    const req = [...ids].filter(id => meta.get(id).kind === 'required')
    totals.tests += ids.size
    totals.required += req.length
    const row = [suite.id, String(ids.size), String(req.length)]
    for (const p of proxies) {
      if (!(p in results)) { row.push('n/a'); continue }
      const pass = [...ids].filter(id => results[p][id] === true).length
      const reqPass = req.filter(id => results[p][id] === true).length
      perProxyTotals[p][0] += pass
      perProxyTotals[p][1] += reqPass
      row.push(`${pass} (${reqPass})`)
    }
    rows.push(row)
  }
  rows.push(['total', String(totals.tests), String(totals.required), ...proxies.map(p => p in results ? `${perProxyTotals[p][0]} (${perProxyTotals[p][1]})` : 'n/a')])
  const widths = header.map((_, i) => Math.max(...rows.map(r => r[i].length)))
  rows.forEach((r, n) => {
    console.log(r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | '))
    if (n === 0 || n === rows.length - 2) console.log(widths.map(w => '-'.repeat(w)).join('-+-'))
  })
  console.log('(tests passed per suite file, required ones in parentheses; browser-only tests are not run against a proxy)')
  console.log()

  if (failuresMode !== 'none') {
    for (const p of ran) {
      const list = summary[p].records.filter(r => r.error !== null && (failuresMode === 'all' || r.kind === 'required'))
      console.log(`${failuresMode === 'all' ? 'NOT PASSED' : 'FAILED REQUIRED'} ${p} (${list.length}; id | kind | result | name | error: message):`)
      list.forEach(r => console.log('  ' + failureLine(r)))
      console.log()
    }
  }
}

for (const p of proxies) {
  if (p in results) {
    const s = summary[p]
    console.log(`BREAKDOWN ${p}: required ${s.requiredPassed}/${s.required}, optimal ${s.optimalPassed}/${s.optimal}, check yes ${s.checkYes}/${s.check}; failed on setup ${s.setup}, harness errors ${s.harness}${s.unknown ? `, results for unknown tests ${s.unknown}` : ''}`)
  }
}
for (const p of proxies) {
  if (p in results) {
    const s = summary[p]
    console.log(`CONFORMANCE ${p}: ${s.passed}/${s.total} passed, ${s.requiredPassed}/${s.required} required`)
  } else {
    console.log(`CONFORMANCE ${p}: not run (${notrun[p] || 'no result'})`)
  }
}
