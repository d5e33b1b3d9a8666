#!/usr/bin/env node
// Browser scenario: a fresh appliance → the setup wizard step by step (with
// the Twilio REST stand-in) → the admin on the dashboard; a phone added in
// the UI registers (a real baresip, started by the Rust test with the
// credentials this script prints) and the Phones page shows it registered
// without a reload; then every page at both sizes (screenshots + axe).
//
// Run by tests/browser.rs, which starts the binary, the stand-in and baresip:
//   BASE_URL=http://127.0.0.1:PORT SHOTS_DIR=… TWILIO_SID=AC… TWILIO_TOKEN=… node tests/wizard.spec.cjs
// Protocol on stdout: one line `PHONE {"username","password","server","port"}`
// when a phone should register; the last line is `SUMMARY {json}`.
'use strict'

const harness = require('./lib/harness.cjs')
const { visible } = harness

const env = (k) => {
  const v = process.env[k]
  if (!v) {
    console.error(`missing ${k}`)
    process.exit(2)
  }
  return v
}
const PW = 'blue kettle on the hob'

async function main() {
  const h = await harness.start({ base: env('BASE_URL'), shots: env('SHOTS_DIR'), name: 'wizard' })
  const { page, step, capture } = h
  const heading = () => page.locator('#step-heading')
  const fieldError = async (label) => {
    const input = page.getByLabel(label, { exact: false }).first()
    if ((await input.getAttribute('aria-invalid')) !== 'true') throw new Error(`${label}: aria-invalid not set`)
    const ids = ((await input.getAttribute('aria-describedby')) || '').split(' ').filter(Boolean)
    const texts = await Promise.all(ids.map((id) => page.locator(`#${CSS.escape(id)}`).innerText().catch(() => '')))
    return texts.join(' | ')
  }
  // node has no CSS.escape; ids from useId() are safe (letters, digits, '-').
  globalThis.CSS = { escape: (s) => s.replace(/[^a-zA-Z0-9_-]/g, (c) => `\\${c}`) }

  // The live-events route may not be in this build yet: then its 404s
  // (the UI falls back to polling) are expected, and said so.
  await step('GET /api/events exists or is reported missing', async () => {
    const r = await page.request.get(`${h.base}/api/events`)
    if (r.status() === 404) {
      h.expectHttpError('/api/events', 404, true)
      return 'missing in this build: pages poll instead'
    }
    return `answers ${r.status()} without a session`
  })

  // --- The wizard ------------------------------------------------------
  await step('a fresh appliance opens the wizard', async () => {
    await page.goto(`${h.base}/phones`)
    await page.waitForURL(`${h.base}/setup`)
    await heading().getByText('Welcome').waitFor()
  })
  await capture('setup-1-welcome')

  await step('1. household name and time zone (preselected from the browser)', async () => {
    const tz = await page.getByLabel('Time zone').inputValue()
    if (tz !== 'Europe/London') throw new Error(`time zone preselected as ${tz}`)
    h.expectHttpError('/api/setup/household', 400)
    await page.getByRole('button', { name: 'Continue' }).click()
    const err = await page.getByText('1 to 100 characters').first().waitFor().then(() => fieldError('Household name'))
    await page.getByLabel('Household name').fill('The Smiths')
    await page.getByRole('button', { name: 'Continue' }).click()
    await heading().getByText('Administrator').waitFor()
    return { errorShown: err }
  })

  await step('reload resumes at the administrator step', async () => {
    await page.reload()
    await heading().getByText('Administrator').waitFor()
  })

  await step('2. administrator: policy shown while typing, server errors at the field', async () => {
    await page.getByLabel('Password', { exact: false }).first().fill('short')
    const policy = await page.locator('#password-policy').innerText()
    if (!/5 so far/.test(policy) || !/not met yet/.test(policy)) throw new Error(`policy list: ${policy}`)
    await capture('setup-2-admin')
    await page.getByLabel('Email').fill('not-an-email')
    h.expectHttpError('/api/setup/admin', 400)
    await page.getByRole('button', { name: 'Create the administrator' }).click()
    await page.locator('[aria-invalid="true"]').first().waitFor()
    const emailErr = await fieldError('Email')
    const pwErr = await fieldError('Password')
    await page.getByLabel('Your name').fill('Mum')
    await page.getByLabel('Email').fill('mum@x.org')
    await page.getByLabel('Password', { exact: false }).first().fill(PW)
    await page.getByRole('button', { name: 'Create the administrator' }).click()
    await heading().getByText('Twilio').waitFor()
    return { emailErr, pwErr }
  })

  await step('3. Twilio: a wrong token is refused at the field, then checked and saved', async () => {
    await page.getByLabel('Account SID').fill(env('TWILIO_SID'))
    await page.getByLabel('Auth Token').fill('tok-wrong')
    h.expectHttpError('/api/setup/twilio', 400)
    await page.getByRole('button', { name: 'Check and save' }).click()
    await page.locator('[aria-invalid="true"]').first().waitFor()
    const tokenErr = await fieldError('Auth Token')
    await capture('setup-3-twilio')
    await page.getByLabel('Auth Token').fill(env('TWILIO_TOKEN'))
    await page.getByRole('button', { name: 'Check and save' }).click()
    await heading().getByText('Internet').waitFor()
    return { tokenErr }
  })

  await step('4. internet: the router checklist and the public address', async () => {
    const rules = await page.getByTestId('forward-rules').innerText()
    for (const want of ['UDP ports 10000-10199', 'TCP port 443', 'TCP port 5061']) {
      if (!rules.includes(want)) throw new Error(`checklist lacks "${want}": ${rules}`)
    }
    await capture('setup-4-internet')
    h.expectHttpError('/api/setup/network', 400)
    await page.getByLabel('Public address (URL)').fill('not a url')
    await page.getByRole('button', { name: 'Continue' }).click()
    await page.locator('[aria-invalid="true"]').first().waitFor()
    await page.getByLabel('Public address (URL)').fill('https://home.example.org')
    await page.getByRole('button', { name: 'Continue' }).click()
    await heading().getByText('Numbers').waitFor()
    return rules.split('\n').filter((l) => l.startsWith('Forward'))
  })

  await step('5. numbers listed from Twilio, connected with one click', async () => {
    await page.getByText('+15551230009').waitFor()
    await page.getByRole('button', { name: 'Connect +15551230009' }).click()
    await page.getByText('Connected', { exact: true }).waitFor()
    await capture('setup-5-numbers')
    await page.getByRole('button', { name: 'Continue' }).click()
    await heading().getByText('First phone').waitFor()
  })

  await step('6. the first phone: SIP settings shown large, with a QR', async () => {
    await page.getByLabel('SIP user name').fill('mum-desk')
    await page.getByRole('button', { name: 'Create the phone' }).click()
    await page.getByTestId('sip-username').waitFor()
    const user = await page.getByTestId('sip-username').innerText()
    const pw = await page.getByTestId('sip-password').innerText()
    const size = await page.getByTestId('sip-password').evaluate((e) => parseFloat(getComputedStyle(e).fontSize))
    if (user !== 'mum-desk' || pw.length < 8) throw new Error(`shown ${user} / ${pw.length} chars`)
    if (size < 20) throw new Error(`password font ${size}px is too small to read off a screen`)
    await page.getByRole('img', { name: /QR code/ }).waitFor()
    await capture('setup-6-phone')
    // Reload: the step resumes with the same phone, not a new form.
    await page.reload()
    await page.getByTestId('sip-username').waitFor()
    await page.getByRole('button', { name: 'Continue' }).click()
    await heading().getByText('Finish').waitFor()
    return { fontPx: size }
  })

  await step('finish lands on the dashboard', async () => {
    await capture('setup-7-finish')
    await page.getByRole('button', { name: 'Finish and go to the dashboard' }).click()
    await page.waitForURL(`${h.base}/`)
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor()
    await page.getByTestId('health-status').getByText('ok').waitFor()
    if (await page.getByTestId('twilio-reminder').count()) throw new Error('Twilio reminder shown though configured')
  })

  await step('/setup after completion says setup is done', async () => {
    await page.goto(`${h.base}/setup`)
    await page.getByRole('heading', { name: 'Setup is done' }).waitFor()
  })
  await capture('setup-done')

  // --- A phone added in the UI registers, seen live ----------------------
  await step('add a phone in Phones; a real phone registers; shown without a reload', async () => {
    await page.goto(`${h.base}/phones`)
    await page.getByRole('heading', { level: 1, name: 'Phones' }).waitFor()
    await page.getByRole('button', { name: 'Add phone' }).click()
    await page.getByLabel(/^Name/).fill('Kitchen')
    await page.getByLabel('SIP user name').fill('kitchen')
    await page.getByRole('button', { name: 'Add phone' }).last().click()
    await page.getByRole('heading', { name: 'SIP settings of Kitchen' }).waitFor()
    const creds = {
      username: await page.getByTestId('sip-username').innerText(),
      password: await page.getByTestId('sip-password').innerText(),
      server: await page.getByTestId('sip-server').innerText(),
      port: await page.getByTestId('sip-port').first().innerText(),
    }
    await capture('phones-new')
    const cell = visible(page.getByTestId('registration-kitchen'))
    await cell.getByText('Not registered').waitFor()
    const navigations = []
    page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()))
    console.log(`PHONE ${JSON.stringify(creds)}`)
    await cell.getByText('Registered', { exact: true }).waitFor({ timeout: 40000 })
    if (navigations.length) throw new Error(`the page navigated: ${navigations}`)
    return { shown: (await cell.innerText()).replace(/\s+/g, ' ') }
  })
  await capture('phones')

  await step('keyboard: the confirm dialog opens on Cancel and Escape closes it', async () => {
    const del = visible(page.getByRole('button', { name: 'Delete Kitchen' }))
    await del.focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'Delete Kitchen?' })
    await dialog.waitFor()
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent.trim())
    if (focused !== 'Cancel') throw new Error(`focus is on ${JSON.stringify(focused)}, not Cancel`)
    await capture('confirm-dialog')
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'hidden' })
    await visible(page.getByTestId('registration-kitchen')).waitFor()
  })

  await step('Users: add an account and see it listed', async () => {
    await page.goto(`${h.base}/users`)
    await page.getByRole('button', { name: 'Add account' }).click()
    await page.getByLabel('Email').fill('kid@x.org')
    await page.getByLabel(/^Name/).fill('Kid')
    await page.getByLabel('Password', { exact: false }).first().fill(PW)
    await page.getByRole('button', { name: 'Add account' }).last().click()
    await visible(page.getByTestId('lock-kid@x.org')).waitFor()
  })
  await capture('users')

  // --- Every other page at both sizes ----------------------------------
  for (const [label, p, title] of [
    ['dashboard', '/', 'Dashboard'],
    ['numbers', '/numbers', 'Numbers'],
    ['calls', '/calls', 'Calls'],
    ['call-history', '/calls/history', 'Call history'],
    ['settings-system', '/settings/system', 'Settings'],
    ['settings-twilio', '/settings/twilio', 'Settings'],
    ['settings-sip', '/settings/sip', 'Settings'],
    ['settings-hold-music', '/settings/hold-music', 'Settings'],
    ['settings-blocklist', '/settings/blocklist', 'Settings'],
    ['settings-alerts', '/settings/alerts', 'Settings'],
    ['not-found', '/no/such/page', 'Page not found'],
  ]) {
    await step(`${p} renders`, async () => {
      await page.goto(`${h.base}${p}`)
      await page.getByRole('heading', { level: 1, name: title }).waitFor()
    })
    await capture(label)
  }

  await step('the phone-width menu opens and navigates', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(`${h.base}/`)
    const menu = page.getByRole('button', { name: 'Menu' })
    await menu.click()
    if ((await menu.getAttribute('aria-expanded')) !== 'true') throw new Error('aria-expanded not set')
    await page.screenshot({ path: `${env('SHOTS_DIR')}/menu-open-phone.png`, fullPage: true })
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click()
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor()
    await page.setViewportSize({ width: 1280, height: 800 })
  })

  await step('sign out; a protected page goes to login with next, and back after', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(/\/login/)
    h.expectHttpError('/api/me', 401)
    await page.goto(`${h.base}/users`)
    await page.waitForURL(`${h.base}/login?next=/users`)
    await capture('login')
    // By keyboard only: type, Tab, type, Enter.
    await page.getByLabel('Email').focus()
    await page.keyboard.type('mum@x.org')
    await page.keyboard.press('Tab')
    await page.keyboard.type(PW)
    await page.keyboard.press('Enter')
    await page.waitForURL(`${h.base}/users`)
  })

  await step('a family member is sent to their home page, not an admin page', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(/\/login/)
    await page.getByLabel('Email').fill('kid@x.org')
    await page.getByLabel('Password').fill(PW)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${h.base}/phones`)
    await page.goto(`${h.base}/users`)
    await page.waitForURL(`${h.base}/phones`)
    const nav = await page.getByRole('navigation', { name: 'Main' }).innerText()
    if (nav.includes('Users') || nav.includes('Dashboard')) throw new Error(`admin entries in a user's nav: ${nav}`)
  })
  await capture('phones-as-user')

  await h.finish()
}

main().catch((e) => {
  console.log(`SUMMARY ${JSON.stringify({ ok: false, error: String((e && e.stack) || e) })}`)
  process.exit(1)
})
