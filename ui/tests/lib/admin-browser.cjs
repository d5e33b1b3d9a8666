// Shared pieces of the admin-page browser scenarios: Debian's Chromium
// through playwright-core, every request kept on the server's origin,
// console errors and page errors collected, axe-core run on a page (serious
// and critical violations fail), screenshots at phone and laptop size.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { chromium } = require('playwright-core')
const { QUIET_FLAGS } = require('./chromium.cjs')

const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'laptop', width: 1280, height: 800 },
]

/** Starts the browser; returns { ctx, page, problems, close }. */
async function launch(base) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'homeline-admin-profile-'))
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium',
    headless: true,
    args: [...QUIET_FLAGS, '--autoplay-policy=no-user-gesture-required'],
    viewport: { width: 1280, height: 800 },
    timeout: 30000,
  })
  const problems = { console: [], page: [], offOrigin: [] }
  const origin = new URL(base).origin
  await ctx.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin) return route.continue()
    problems.offOrigin.push(url)
    return route.abort()
  })
  const page = ctx.pages()[0] || (await ctx.newPage())
  page.setDefaultTimeout(10000)
  page.on('pageerror', (e) => problems.page.push(String(e.message || e)))
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    const at = (m.location() && m.location().url) || page.url()
    problems.console.push({ text: m.text(), url: at })
  })
  const close = async () => {
    await ctx.close().catch(() => {})
    fs.rmSync(profile, { recursive: true, force: true })
  }
  return { ctx, page, problems, close }
}

/** Signs in through the login form and waits to leave it. */
async function login(page, base, email, password) {
  await page.goto(`${base}/login`, { waitUntil: 'load' })
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: /sign in/i }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 15000 })
}

// Injected through the DevTools protocol, not a <script>: the appliance's
// CSP forbids inline scripts, and it stays on to catch real violations.
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

/** Serious and critical axe violations of the page as it is: [{ id, help, nodes }]. */
async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE)
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }))
  })
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
}

/**
 * Visits `route` at both sizes, waits for `ready` (a function of the page
 * that resolves when the page shows its data), screenshots each size into
 * `dir` as `<name>-<size>.png` and runs axe on each. Returns the violations.
 */
async function tour(page, base, route, name, dir, ready) {
  const found = []
  for (const s of SIZES) {
    await page.setViewportSize({ width: s.width, height: s.height })
    if (new URL(page.url()).pathname + new URL(page.url()).search !== route) {
      await page.goto(`${base}${route}`, { waitUntil: 'load' })
    }
    await page.getByRole('heading', { level: 1 }).first().waitFor()
    if (ready) await ready(page)
    // Let spinners and transitions settle.
    await page.waitForTimeout(300)
    await page.screenshot({ path: path.join(dir, `${name}-${s.name}.png`), fullPage: true })
    for (const v of await axe(page)) found.push({ page: name, size: s.name, ...v })
  }
  await page.setViewportSize({ width: 1280, height: 800 })
  return found
}

/** Reads lines from stdin as commands from the driving test. */
function commands() {
  const waiting = []
  const queued = []
  let buf = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buf += chunk
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim()
      buf = buf.slice(i + 1)
      if (!line) continue
      if (waiting.length) waiting.shift()(line)
      else queued.push(line)
    }
  })
  /** Resolves with the next line (rejects after `ms`). */
  return (ms = 60000) =>
    new Promise((resolve, reject) => {
      if (queued.length) return resolve(queued.shift())
      const t = setTimeout(() => reject(new Error(`no command from the test within ${ms / 1000} s`)), ms)
      waiting.push((l) => {
        clearTimeout(t)
        resolve(l)
      })
    })
}

/** Tells the driving test something (one line on stdout). */
function say(what) {
  process.stdout.write(`${what}\n`)
}

module.exports = { SIZES, launch, login, axe, tour, commands, say }
