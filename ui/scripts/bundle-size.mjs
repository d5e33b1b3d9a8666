// Prints what a browser loads before the first page (index.html's scripts,
// styles and modulepreloads), gzipped, and fails above the budget. Every
// page is a lazy chunk, so this is the shell: Vue, the router, Pinia, the
// client, the app shell and the CSS.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'

const BUDGET_KIB = 150
const dist = new URL('../../ui-dist/', import.meta.url).pathname
const html = readFileSync(join(dist, 'index.html'), 'utf8')
const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1])
let total = 0
for (const f of files) {
  const gz = gzipSync(readFileSync(join(dist, f)), { level: 9 }).length
  total += gz
  console.log(`${(gz / 1024).toFixed(1).padStart(7)} KiB  ${f}`)
}
console.log(`${(total / 1024).toFixed(1).padStart(7)} KiB  initial JS+CSS, gzip (budget ${BUDGET_KIB} KiB)`)
if (!files.length) {
  console.error('no assets referenced by ui-dist/index.html')
  process.exit(1)
}
if (total > BUDGET_KIB * 1024) {
  console.error(`over budget by ${((total - BUDGET_KIB * 1024) / 1024).toFixed(1)} KiB`)
  process.exit(1)
}
