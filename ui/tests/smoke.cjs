#!/usr/bin/env node
// Browser smoke test of the Homeline web UI, using Debian's Chromium through
// playwright-core (which never downloads browsers).
//
//   node tests/smoke.cjs BASE_URL [SCREENSHOT_DIR]
//   e.g. node tests/smoke.cjs http://127.0.0.1:8080 /tmp/homeline-shots
//
// Environment: CHROMIUM overrides the browser path (default /usr/lib/chromium/chromium).
// Run Chromium in a network namespace that only has loopback, as root:
//   unshare -n bash -c 'ip link set lo up; <start server>; node tests/smoke.cjs ...'
//
// Checks that a fresh appliance sends every page (SPA fallback included) to the
// setup wizard.
// Prints one JSON summary line; exits non-zero if any check fails.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { chromium } = require('playwright-core')

const OVERALL_TIMEOUT_MS = 60000
const base = (process.argv[2] || '').replace(/\/+$/, '')
const outDir = path.resolve(process.argv[3] || path.join(os.tmpdir(), 'homeline-smoke'))

if (!/^https?:\/\//.test(base)) {
  console.error('usage: node tests/smoke.cjs BASE_URL [SCREENSHOT_DIR]')
  process.exit(2)
}

const summary = { base, outDir, ok: false, checks: [], pageErrors: [], offOrigin: [], screenshots: [] }
let ctx = null
let profile = null
let finished = false

function record(name, ok, detail) {
  summary.checks.push(detail === undefined ? { name, ok } : { name, ok, detail })
}

async function cleanup() {
  if (ctx) {
    const c = ctx
    ctx = null
    await c.close().catch(() => {})
  }
  if (profile) {
    fs.rmSync(profile, { recursive: true, force: true })
    profile = null
  }
}

function finish(code) {
  if (finished) return
  finished = true
  console.log(JSON.stringify(summary))
  process.exit(code)
}

const watchdog = setTimeout(async () => {
  record('overall timeout', false, `not done after ${OVERALL_TIMEOUT_MS / 1000} s`)
  await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 5000))])
  finish(1)
}, OVERALL_TIMEOUT_MS)

async function step(name, fn) {
  try {
    const detail = await fn()
    record(name, true, detail)
  } catch (e) {
    record(name, false, String((e && e.message) || e).split('\n')[0])
  }
}

async function shot(page, file) {
  try {
    const p = path.join(outDir, file)
    await page.screenshot({ path: p, fullPage: true })
    summary.screenshots.push(p)
  } catch (e) {
    summary.checks.push({ name: `screenshot ${file}`, ok: false, detail: String(e.message || e).split('\n')[0] })
  }
}

const textOf = (locator) => locator.innerText({ timeout: 5000 }).then((t) => t.trim())

async function main() {
  fs.mkdirSync(outDir, { recursive: true })
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'homeline-smoke-profile-'))
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    viewport: { width: 1024, height: 720 },
    timeout: 30000,
  })
  summary.browser = ctx.browser() ? ctx.browser().version() : undefined

  // The UI must never reach beyond its own server: abort and report anything else.
  const origin = new URL(base).origin
  await ctx.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin) return route.continue()
    summary.offOrigin.push(url)
    return route.abort()
  })

  const page = ctx.pages()[0] || (await ctx.newPage())
  page.setDefaultTimeout(10000)
  page.on('pageerror', (e) => summary.pageErrors.push(String(e.message || e)))

  // A fresh appliance sends every page to the setup wizard.
  await step('fresh appliance: every page goes to /setup', async () => {
    for (const p of ['/', '/calls', '/login']) {
      const resp = await page.goto(`${base}${p}`, { waitUntil: 'load', timeout: 15000 })
      if (!resp || resp.status() !== 200) throw new Error(`GET ${p} answered ${resp && resp.status()}`)
      await page.waitForURL(`${base}/setup`, { timeout: 10000 })
    }
    const heading = await textOf(page.getByRole('heading', { level: 1 }))
    return heading
  })
  await shot(page, 'setup.png')

  if (summary.pageErrors.length) record('no uncaught page errors', false, summary.pageErrors[0])
  if (summary.offOrigin.length) record('no off-origin requests', false, summary.offOrigin[0])
}

main()
  .catch((e) => record('browser', false, String((e && e.message) || e).split('\n')[0]))
  .then(cleanup)
  .then(() => {
    clearTimeout(watchdog)
    summary.ok = summary.checks.length > 0 && summary.checks.every((c) => c.ok)
    finish(summary.ok ? 0 : 1)
  })
