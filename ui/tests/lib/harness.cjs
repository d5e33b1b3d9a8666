// Shared harness of the browser scenarios (ui/tests/*.spec.cjs): Debian's
// Chromium through playwright-core (never a downloaded browser), requests
// kept on the server's origin, console errors and axe-core violations
// collected, screenshots of each page at phone and laptop size.
//
//   const h = await harness.start({ base, shots, name })
//   await h.capture('dashboard')      // both sizes: screenshots + axe
//   h.expectHttpError('/api/setup/twilio', 400)   // a 4xx the scenario provokes
//   await h.finish()                  // prints the summary, exits 0/1
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { chromium } = require('playwright-core')
const { QUIET_FLAGS } = require('./chromium.cjs')

const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
]
// Evaluated through the DevTools protocol, which the page's CSP does not
// govern (an injected <script> would be refused, rightly).
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

async function start({ base, shots, name, timeoutMs = 150000 }) {
  base = base.replace(/\/+$/, '')
  fs.mkdirSync(shots, { recursive: true })
  const summary = { scenario: name, base, ok: false, checks: [], consoleErrors: [], axe: [], offOrigin: [], screenshots: [] }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `homeline-${name}-`))
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || (fs.existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : '/usr/lib/chromium/chromium'),
    headless: true,
    args: [...QUIET_FLAGS, '--disable-domain-reliability'],
    viewport: { width: 1280, height: 800 },
    timezoneId: 'Europe/London',
    locale: 'en-GB',
    timeout: 30000,
  })
  const origin = new URL(base).origin
  await ctx.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin) return route.continue()
    summary.offOrigin.push(url)
    return route.abort()
  })
  const page = ctx.pages()[0] || (await ctx.newPage())
  page.setDefaultTimeout(15000)

  // A failed request is logged by Chromium as a console error. Those the
  // scenario provokes on purpose are declared; every other one fails it.
  const expected = []
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const text = msg.text()
    const loc = msg.location() && msg.location().url
    if (text.startsWith('Failed to load resource') && loc) {
      const p = new URL(loc).pathname
      const status = Number((text.match(/status of (\d+)/) || [])[1])
      const i = expected.findIndex((e) => p.startsWith(e.path) && (!e.status || e.status === status))
      if (i >= 0) {
        if (!expected[i].sticky) expected.splice(i, 1)
        return
      }
    }
    summary.consoleErrors.push(`${text}${loc ? ` (${loc})` : ''}`)
  })
  page.on('pageerror', (e) => summary.consoleErrors.push(`uncaught: ${String(e.message || e)}`))

  const watchdog = setTimeout(() => {
    summary.checks.push({ name: 'overall timeout', ok: false, detail: `not done after ${timeoutMs / 1000} s` })
    finish().catch(() => process.exit(1))
  }, timeoutMs)

  let finished = false
  async function finish() {
    if (finished) return
    finished = true
    clearTimeout(watchdog)
    await Promise.race([ctx.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))])
    fs.rmSync(profile, { recursive: true, force: true })
    if (summary.consoleErrors.length) summary.checks.push({ name: 'no console errors', ok: false, detail: summary.consoleErrors.slice(0, 5) })
    if (summary.offOrigin.length) summary.checks.push({ name: 'no off-origin requests', ok: false, detail: summary.offOrigin[0] })
    const serious = summary.axe.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    if (serious.length) summary.checks.push({ name: 'axe: no serious or critical violations', ok: false, detail: serious.slice(0, 8) })
    summary.ok = summary.checks.length > 0 && summary.checks.every((c) => c.ok)
    console.log(`SUMMARY ${JSON.stringify(summary)}`)
    process.exit(summary.ok ? 0 : 1)
  }

  /** Runs one named check; a throw fails it (and the scenario goes on). */
  async function step(label, fn) {
    try {
      const detail = await fn()
      summary.checks.push(detail === undefined ? { name: label, ok: true } : { name: label, ok: true, detail })
      return true
    } catch (e) {
      summary.checks.push({ name: label, ok: false, detail: String((e && e.message) || e).split('\n')[0] })
      return false
    }
  }

  async function axe(label) {
    if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE_SOURCE)
    const result = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] })
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))
    })
    for (const v of result) summary.axe.push({ page: label, ...v })
  }

  /** Screenshots (full page) and axe at both sizes; leaves the laptop size. */
  async function capture(label) {
    for (const s of SIZES) {
      await page.setViewportSize({ width: s.width, height: s.height })
      await page.waitForTimeout(150)
      await page.waitForLoadState('networkidle', { timeout: 3000 }).catch(() => {})
      const file = path.join(shots, `${label}-${s.name}.png`)
      await page.screenshot({ path: file, fullPage: true })
      summary.screenshots.push(file)
      await axe(`${label} @${s.name}`)
    }
  }

  return {
    page,
    ctx,
    base,
    summary,
    step,
    capture,
    finish,
    /** Declares a 4xx/5xx response the scenario causes (excused once; sticky: always). */
    expectHttpError(pathPrefix, status, sticky = false) {
      expected.push({ path: pathPrefix, status, sticky })
    },
    /** Where the app is now (path + query). */
    where() {
      const u = new URL(page.url())
      return u.pathname + u.search
    },
  }
}

/** The visible one of several matches (DataTable renders a table and cards). */
function visible(locator) {
  return locator.locator('visible=true').first()
}

module.exports = { start, visible, SIZES }
