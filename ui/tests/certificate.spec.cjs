#!/usr/bin/env node
// Browser scenario: Settings → HTTPS certificate against the real binary
// and Pebble (a real ACME server). The admin sees the self-signed state,
// turns the certificate on with an e-mail, presses "Get certificate now",
// and watches the page reach "Valid" without a reload. Screenshots and
// axe-core at 390×844 and 1280×800, before and after.
//
// Run by tests/acme.rs (the test with "browser" in its name):
//   BASE_URL=http://127.0.0.1:PORT SHOTS_DIR=… ADMIN_EMAIL=… ADMIN_PASSWORD=… node tests/certificate.spec.cjs
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

async function must(h, label, fn) {
  if (!(await h.step(label, fn))) await h.finish()
}

async function main() {
  const h = await harness.start({ base: env('BASE_URL'), shots: env('SHOTS_DIR'), name: 'certificate', timeoutMs: 150000 })
  const { page, capture } = h

  await must(h, 'sign in', async () => {
    await page.goto(`${h.base}/login`)
    await page.getByLabel('Email').fill(env('ADMIN_EMAIL'))
    await page.getByLabel('Password').fill(env('ADMIN_PASSWORD'))
    await page.getByRole('button', { name: /sign in/i }).click()
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  })

  await must(h, 'the page shows the self-signed certificate and ACME off', async () => {
    await page.goto(`${h.base}/settings/certificate`)
    await page.getByRole('heading', { name: 'HTTPS certificate' }).first().waitFor()
    await page.getByTestId('cert-state').getByText(/Off: the self-signed certificate is served/).waitFor()
    await page.getByText('self-signed', { exact: false }).first().waitFor()
    const renew = page.getByRole('button', { name: 'Get certificate now' })
    if (!(await renew.isDisabled())) throw new Error('"Get certificate now" is enabled while ACME is off')
    await capture('certificate-off')
  })

  await must(h, 'turning it on and getting the certificate reaches "Valid" live', async () => {
    await page.getByLabel('Get and renew the certificate automatically').check()
    await page.getByLabel('E-mail for the certificate authority').fill('mum@example.com')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByText(/Saved\. A certificate is asked for/).waitFor()
    const renew = page.getByRole('button', { name: 'Get certificate now' })
    await renew.waitFor()
    if (await renew.isEnabled()) await renew.click()
    await page.getByTestId('cert-state').getByText('Valid', { exact: true }).waitFor({ timeout: 60000 })
    await page.getByText(/issued by/).first().waitFor()
    await page.getByText('Renewed on').waitFor()
    await capture('certificate-valid')
  })

  await h.finish()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
