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
// Checks: (1) login shows an alert with the server's error message, and the POST
// carries the JSON body and CSRF header; (2) a client route (/calls) renders the shell
// and its heading; (3) the dashboard shows the /health status "ok".
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

  // 1. Login: the server's error message is shown in an alert.
  await step('login shows server error in an alert', async () => {
    await page.goto(`${base}/login`, { waitUntil: 'load', timeout: 15000 })
    await page.locator('form').waitFor()
    await page.getByLabel('Email').fill('smoke@example.invalid')
    await page.getByLabel('Password').fill('not-the-password')
    const [req] = await Promise.all([
      page.waitForRequest((r) => r.url() === `${base}/api/auth/login` && r.method() === 'POST'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ])
    const headers = req.headers()
    if (headers['x-requested-with'] !== 'homeline') throw new Error('login POST lacks X-Requested-With: homeline')
    if (!(headers['content-type'] || '').startsWith('application/json')) throw new Error('login POST is not JSON')
    const body = JSON.parse(req.postData() || 'null')
    if (!body || body.email !== 'smoke@example.invalid' || body.password !== 'not-the-password') {
      throw new Error('login POST body is not {"email","password"}')
    }
    const alert = page.getByRole('alert')
    await alert.waitFor()
    const text = await textOf(alert)
    if (!text) throw new Error('alert is empty')
    return text
  })
  await shot(page, 'login.png')

  // 2. A client route served by the SPA fallback renders the shell.
  await step('client route /calls renders the shell', async () => {
    const resp = await page.goto(`${base}/calls`, { waitUntil: 'load', timeout: 15000 })
    if (!resp || resp.status() !== 200) throw new Error(`GET /calls answered ${resp && resp.status()}`)
    const nav = page.getByRole('navigation', { name: 'Main' })
    await nav.waitFor()
    for (const name of ['Dashboard', 'Phones', 'Numbers', 'Calls', 'Voicemail', 'Messages', 'Settings']) {
      if (!(await nav.getByRole('link', { name, exact: true }).isVisible())) throw new Error(`nav link ${name} not visible`)
    }
    const heading = await textOf(page.getByRole('heading', { level: 1 }))
    if (heading !== 'Calls') throw new Error(`heading is ${JSON.stringify(heading)}, expected "Calls"`)
    return heading
  })

  // 3. The dashboard shows the /health status.
  await step('dashboard shows health status ok', async () => {
    await page.goto(`${base}/`, { waitUntil: 'load', timeout: 15000 })
    const status = page.getByTestId('health-status')
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="health-status"]')?.textContent || '').trim() === 'ok',
      null,
      { timeout: 10000 },
    ).catch(async () => {
      const seen = (await status.count()) ? await textOf(status) : 'no status shown'
      throw new Error(`health status is ${JSON.stringify(seen)}, expected "ok"`)
    })
    const version = page.getByTestId('health-version')
    return { status: 'ok', version: (await version.count()) ? await textOf(version) : null }
  })
  await shot(page, 'shell.png')

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
