#!/usr/bin/env node
// Browser scenario: Settings → Router & address against the real binary in
// a namespace with loopback only (no router answers there). The admin sees
// the address card, ticks "Let Homeline open the ports on my router" and
// sees every forward reported as not supported with the reason, enters a
// DuckDNS name the server refuses, then a valid one whose update fails
// (the stand-in URL is a closed port) and sees the failure. Every state at
// both sizes: screenshots and axe-core.
//
// Run by tests/router.rs:
//   BASE_URL=http://127.0.0.1:PORT SHOTS_DIR=… ADMIN_EMAIL=… ADMIN_PASSWORD=… node tests/network.spec.cjs
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
  const h = await harness.start({ base: env('BASE_URL'), shots: env('SHOTS_DIR'), name: 'network', timeoutMs: 150000 })
  const { page, capture } = h
  const must = async (label, fn) => {
    if (!(await h.step(label, fn))) await h.finish()
  }

  await must('sign in', async () => {
    await page.goto(`${h.base}/login`)
    await page.getByLabel('Email').fill(env('ADMIN_EMAIL'))
    await page.getByLabel('Password').fill(env('ADMIN_PASSWORD'))
    await page.getByRole('button', { name: /sign in/i }).click()
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  })

  await must('the page is in the settings navigation and shows the address', async () => {
    await page.goto(`${h.base}/settings/system`)
    await page.getByRole('link', { name: 'Router & address' }).click()
    await page.waitForURL(/\/settings\/network$/)
    await page.getByRole('heading', { name: 'Public address' }).waitFor()
    const ip = await page.getByTestId('public-ip').innerText()
    if (!/Not known/.test(ip)) throw new Error(`address shown: ${ip}`)
  })
  await capture('network')

  await must('agreeing asks the router; no router here: every forward is not supported', async () => {
    await page.getByRole('checkbox', { name: 'Let Homeline open the ports on my router' }).check()
    const table = page.getByRole('table', { name: 'Forwards at the router' })
    await table.waitFor({ timeout: 30000 })
    await table.getByText('Not supported').first().waitFor()
    const text = await table.innerText()
    for (const want of ['UDP 20100-20103', 'neither UPnP-IGD nor NAT-PMP']) {
      if (!text.includes(want)) throw new Error(`missing ${want}: ${text}`)
    }
  })
  await capture('network-forwards')

  await must('a DuckDNS name the server refuses is shown at its field', async () => {
    await page.getByLabel('Service').selectOption('duckdns')
    await page.getByLabel('Name').fill('bad_name')
    await page.getByLabel('Token').fill('tok-123')
    h.expectHttpError('/api/system/config', 400)
    await page.getByRole('button', { name: 'Save', exact: true }).first().click()
    await page.getByText('expected a DuckDNS name').waitFor()
  })
  await capture('network-ddns-refused')

  await must('a valid name is saved; its failing update is reported', async () => {
    await page.getByLabel('Name').fill('myhome')
    await page.getByRole('button', { name: 'Save', exact: true }).first().click()
    await page.getByText('https://myhome.duckdns.org').waitFor()
    await page.getByText(/Not updated/).waitFor({ timeout: 30000 })
  })
  await capture('network-ddns')

  await h.finish()
}

main().catch((e) => {
  console.log(`SUMMARY ${JSON.stringify({ ok: false, checks: [{ name: 'scenario', ok: false, detail: String((e && e.stack) || e) }] })}`)
  process.exit(1)
})
