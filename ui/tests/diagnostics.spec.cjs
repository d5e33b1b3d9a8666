#!/usr/bin/env node
// Browser scenario: Settings → Diagnostics against the real binary. The
// page runs the checks when it opens; the number pointing elsewhere and
// Twilio's 11200 alert are shown with their fixes; "Run again" runs them
// again. Screenshots and axe-core at both sizes.
//
// Run by tests/doctor.rs, which sets up the household and the Twilio stand-in:
//   BASE_URL=http://127.0.0.1:PORT SHOTS_DIR=… ADMIN_EMAIL=… ADMIN_PASSWORD=… node tests/diagnostics.spec.cjs
// The last line on stdout is `SUMMARY {json}`.
'use strict'

const harness = require('./lib/harness.cjs')

const env = (k) => {
  const v = process.env[k]
  if (!v) {
    console.error(`missing ${k}`)
    process.exit(2)
  }
  return v
}

async function main() {
  const h = await harness.start({ base: env('BASE_URL'), shots: env('SHOTS_DIR'), name: 'diagnostics', timeoutMs: 120000 })
  const { page, capture } = h
  const check = (id) => page.locator(`li[data-check="${id}"]`)

  const signedIn = await h.step('sign in', async () => {
    await page.goto(`${h.base}/login`)
    await page.getByLabel('Email').fill(env('ADMIN_EMAIL'))
    await page.getByLabel('Password').fill(env('ADMIN_PASSWORD'))
    await page.getByRole('button', { name: /sign in/i }).click()
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  })
  if (!signedIn) await h.finish()

  await h.step('the settings navigation leads to Diagnostics, which runs on open', async () => {
    await page.goto(`${h.base}/settings/system`)
    await page.getByRole('link', { name: 'Diagnostics' }).first().click()
    await page.waitForURL(/\/settings\/diagnostics$/)
    await page.getByRole('list', { name: 'Checks' }).waitFor({ timeout: 20000 })
    const summary = await page.getByRole('status').filter({ hasText: 'Something is broken' }).count()
    if (!summary) throw new Error('no "Something is broken" summary')
  })

  await h.step('the number pointing elsewhere is an error with the Connect fix', async () => {
    const c = check('numbers')
    await c.waitFor()
    const text = await c.innerText()
    if (!text.includes('Error')) throw new Error(`not an error: ${text}`)
    if (!text.includes('calls go to https://old.example.net/voice')) throw new Error(`where it points is not said: ${text}`)
    if (!text.includes('What to do: On the Numbers page press Connect')) throw new Error(`no fix: ${text}`)
  })

  await h.step("Twilio's 11200 alert is explained", async () => {
    const text = await check('twilio_alert_11200').innerText()
    if (!text.includes('Twilio error 11200: HTTP retrieval failure')) throw new Error(text)
    if (!text.includes('What to do:')) throw new Error(`no fix: ${text}`)
  })

  await h.step('ok checks show no fix', async () => {
    const text = await check('twilio_credentials').innerText()
    if (!text.includes('OK') || text.includes('What to do')) throw new Error(text)
  })
  await capture('diagnostics')

  await h.step('"Run again" runs the checks again', async () => {
    const asked = page.waitForResponse((r) => r.url().endsWith('/api/diagnostics') && r.status() === 200, { timeout: 20000 })
    await page.getByRole('button', { name: 'Run again' }).click()
    await asked
    await page.getByRole('button', { name: 'Run again' }).and(page.locator(':not([disabled])')).waitFor({ timeout: 20000 })
    await check('numbers').waitFor()
  })

  await h.finish()
}

main().catch((e) => {
  console.log(`SUMMARY ${JSON.stringify({ ok: false, checks: [{ name: 'scenario', ok: false, detail: String((e && e.stack) || e) }] })}`)
  process.exit(1)
})
