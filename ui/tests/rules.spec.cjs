#!/usr/bin/env node
// Browser scenario: Numbers → Rules against the real binary. The admin
// makes a caller list, adds three rules (one with hours painted in the week
// grid, one refused first by the server's validation), reorders them by
// dragging and with the keyboard buttons, disables and re-enables one, asks
// the simulator (the matched rule is highlighted), switches Do-Not-Disturb
// from the header (and sees a change made elsewhere arrive live), quiets a
// phone on the DND page and adds an SMS auto-reply. Every page at both
// sizes: screenshots and axe-core.
//
// Run by tests/browser_rules.rs, which starts the binary with a number, two
// accounts and three phones:
//   BASE_URL=http://127.0.0.1:PORT SHOTS_DIR=… ADMIN_EMAIL=… ADMIN_PASSWORD=… FAMILY_EMAIL=… node tests/rules.spec.cjs
// (the family member has the admin's password)
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

/** Fails the scenario now (later steps depend on this one). */
async function must(h, label, fn) {
  if (!(await h.step(label, fn))) await h.finish()
}

async function main() {
  const h = await harness.start({ base: env('BASE_URL'), shots: env('SHOTS_DIR'), name: 'rules', timeoutMs: 200000 })
  const { page, capture } = h
  const api = (method, path, body) =>
    page.evaluate(
      async ([method, path, body]) => {
        const r = await fetch(path, {
          method,
          headers: { 'X-Requested-With': 'homeline', 'Content-Type': 'application/json', Accept: 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        })
        const text = await r.text()
        return { status: r.status, body: text ? JSON.parse(text) : null }
      },
      [method, path, body],
    )
  const rulesList = () => page.getByRole('list', { name: 'Rules, in the order they are tried' })
  const ruleNames = async () => (await rulesList().locator('li[data-rule-id] h3').allInnerTexts()).map((s) => s.trim())
  const serverOrder = async (did) => (await api('GET', `/api/dids/${did}/rules`)).body.items.map((r) => r.name)
  const expectOrder = async (did, want) => {
    const deadline = Date.now() + 5000
    let got
    while (Date.now() < deadline) {
      got = await serverOrder(did)
      if (JSON.stringify(got) === JSON.stringify(want)) return
      await page.waitForTimeout(100)
    }
    throw new Error(`the server's order is ${JSON.stringify(got)}, not ${JSON.stringify(want)}`)
  }
  let did = null
  let me = null
  let rulesApi = true
  /** A step that needs the rules API (routing rules, caller lists, simulator). */
  const ruleStep = (label, fn, fatal = true) =>
    !rulesApi
      ? h.step(label, async () => 'NOT EXERCISED: no rules API in this build')
      : fatal
        ? must(h, label, fn)
        : h.step(label, fn)

  await must(h, 'sign in', async () => {
    await page.goto(`${h.base}/login`)
    await page.getByLabel('Email').fill(env('ADMIN_EMAIL'))
    await page.getByLabel('Password').fill(env('ADMIN_PASSWORD'))
    await page.getByRole('button', { name: /sign in/i }).click()
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
    me = (await api('GET', '/api/me')).body.user
  })

  await must(h, 'Numbers links each number to its rules', async () => {
    did = (await api('GET', '/api/dids')).body.items[0].id
    // A build without the rules API (its branch not merged yet): the page
    // says so in the rules card, and the rule steps are reported as not
    // exercised instead of failing everything after them.
    h.expectHttpError(`/api/dids/${did}/rules`, 404) // the probe's own answer, if so
    rulesApi = (await api('GET', `/api/dids/${did}/rules`)).status !== 404
    if (!rulesApi) {
      h.expectHttpError(`/api/dids/${did}/rules`, 404, true)
      h.expectHttpError('/api/caller-lists', 404, true)
      h.expectHttpError(`/api/dids/${did}/simulate`, 404, true)
    }
    await page.goto(`${h.base}/numbers`)
    await page.getByRole('heading', { name: '+15551230001' }).waitFor()
    await capture('numbers')
    await page.getByRole('link', { name: 'Rules, auto-replies and simulator of +15551230001' }).click()
    await page.waitForURL(/\/numbers\/\d+\/rules$/)
    if (Number(new URL(page.url()).pathname.split('/')[2]) !== did) throw new Error(`went to ${page.url()}`)
    if (!rulesApi) {
      await page.getByRole('heading', { name: 'Rules', level: 2 }).waitFor()
      return 'NOT EXERCISED: this build has no /api/dids/{id}/rules'
    }
    await page.getByText('No rules yet: every call rings every phone of this number.').waitFor()
  })
  await capture('rules-empty')

  await ruleStep('caller lists: a VIP list with grandma', async () => {
    await page.getByRole('link', { name: 'Caller lists' }).click()
    await page.getByRole('button', { name: 'Add a list' }).click()
    await page.getByLabel('List name').fill('VIP')
    await page.getByLabel('Numbers', { exact: true }).fill('+15559870001\n+15559870002')
    await page.getByRole('button', { name: 'Save list' }).click()
    await page.getByRole('list', { name: 'Caller lists' }).getByText('+15559870002').waitFor()
    const lists = (await api('GET', '/api/caller-lists')).body.items
    if (!lists.some((l) => l.name === 'VIP' && l.numbers.length === 2)) throw new Error(`server has ${JSON.stringify(lists)}`)
  })
  if (rulesApi) await capture('caller-lists')

  const newRule = async () => {
    await page.goto(`${h.base}/numbers/${did}/rules`)
    await page.getByRole('link', { name: 'Add a rule' }).click()
    await page.getByRole('heading', { name: 'Add a rule', level: 1 }).waitFor()
  }
  const addCondition = async (label) => {
    await page.getByLabel('New condition').selectOption({ label })
    await page.getByRole('button', { name: 'Add condition' }).click()
  }

  await ruleStep('rule 1: VIP callers ring every phone', async () => {
    await newRule()
    await page.locator('input[name=name]').fill('Grandma rings through')
    await addCondition('Caller is in a list')
    await page.getByLabel('Caller list (condition 1)').selectOption({ label: 'VIP (2)' })
    await page.getByText('In words: If the caller is in “VIP”: Ring every phone.').waitFor()
    await page.getByRole('button', { name: 'Save rule' }).click()
    await page.waitForURL(`${h.base}/numbers/${did}/rules`)
    await rulesList().getByText('Grandma rings through').waitFor()
  })

  await ruleStep("rule 2: bedtime hours painted in the week grid, validation shown at the field", async () => {
    await newRule()
    await addCondition('Time of day / dates')
    const cell = (day, hour) => page.getByRole('gridcell', { name: `${day} ${hour} to`, exact: false })
    // Drag down Monday from 21:00 to 23:00: three hours painted.
    await cell('Monday', '23:00').scrollIntoViewIfNeeded()
    const a = await cell('Monday', '21:00').boundingBox()
    const b = await cell('Monday', '23:00').boundingBox()
    await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2)
    await page.mouse.down()
    await page.mouse.move(a.x + a.width / 2, a.y + a.height * 1.5, { steps: 4 })
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 4 })
    await page.mouse.up()
    // Tuesday early morning with the keyboard: focus 00:00, Space, Down, Space.
    await cell('Tuesday', '00:00').focus()
    await page.keyboard.press('Space')
    await page.keyboard.press('ArrowDown')
    await page.keyboard.press('Space')
    // A day's heading fills the whole day.
    await page.getByRole('button', { name: 'Fill or clear Sunday' }).click()
    const selected = await page.locator('[role=gridcell][aria-selected=true]').count()
    if (selected !== 3 + 2 + 24) throw new Error(`${selected} hours painted, not 29: ${await page.locator('[role=gridcell][aria-selected=true]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')).filter((l) => !l.startsWith('Sunday')).join(', '))}`)
    await page.getByText('In words: Mon 21:00–02:00 (next day); Sun all day').waitFor()
    // A holiday: whole days.
    await page.getByRole('button', { name: 'Add dates' }).click()
    await page.getByLabel('From (dates 1)').fill('2026-12-24')
    await page.getByLabel('To (dates 1)').fill('2026-12-26')
    await page.getByLabel('Name (dates 1)').fill('Christmas')
    await page.getByText('In words: Mon 21:00–02:00 (next day); Sun all day; Christmas (2026-12-24 to 2026-12-26)').waitFor()
    await page.getByLabel('What happens', { exact: true }).selectOption({ label: 'Forward to another number' })
    await page.getByLabel('Forward to').fill('0800 not a number')
    // No name, and a bad number: the server says so next to the fields.
    h.expectHttpError(`/api/dids/${did}/rules`, 400)
    await page.getByRole('button', { name: 'Save rule' }).click()
    const named = page.locator('input[name=name]')
    await page.waitForFunction(() => document.querySelector('input[name=name]').getAttribute('aria-invalid') === 'true')
    const msg = await page.locator(`#${await named.getAttribute('aria-describedby')}`).first().innerText()
    if (!msg.trim()) throw new Error('no message next to the name')
    await capture('rule-form-errors')
    await named.fill("Kids' bedtime")
    await page.getByLabel('What happens', { exact: true }).selectOption({ label: 'Ring chosen phones' })
    await page.getByRole('checkbox', { name: 'Kitchen' }).check()
    await page.getByRole('button', { name: 'Save rule' }).click()
    await page.waitForURL(`${h.base}/numbers/${did}/rules`)
    await rulesList().getByText("Kids' bedtime").waitFor()
    const saved = (await api('GET', `/api/dids/${did}/rules`)).body.items.find((r) => r.name === "Kids' bedtime")
    const sched = saved.conditions[0].schedule
    const sunday = sched.weekly.find((w) => w.days.includes('sun'))
    const monday = sched.weekly.find((w) => w.days.includes('mon'))
    if (!sunday || sunday.from !== '00:00' || sunday.to !== '00:00') throw new Error(`Sunday: ${JSON.stringify(sched)}`)
    if (!monday || monday.from !== '21:00' || monday.to !== '02:00') throw new Error(`Monday: ${JSON.stringify(sched)}`)
    const [d, ...more] = sched.dates || []
    if (!d || more.length || d.from !== '2026-12-24' || d.to !== '2026-12-26' || d.label !== 'Christmas') {
      throw new Error(`dates: ${JSON.stringify(sched.dates)}`)
    }
    return JSON.stringify(sched)
  })

  await ruleStep('rule 3: withheld numbers get busy', async () => {
    await newRule()
    await page.locator('input[name=name]').fill('No withheld numbers')
    await addCondition('Caller ID withheld')
    await page.getByLabel('What happens', { exact: true }).selectOption({ label: 'Reject the call' })
    await page.getByLabel('How').selectOption({ label: 'Busy (the caller hears a busy tone)' })
    await capture('rule-form')
    await page.getByRole('button', { name: 'Save rule' }).click()
    await page.waitForURL(`${h.base}/numbers/${did}/rules`)
    await rulesList().getByText('No withheld numbers').waitFor()
  })

  await ruleStep('drag and drop: the last rule dragged to the top', async () => {
    const handle = page.getByRole('button', { name: /^Drag to reorder “No withheld numbers”/ })
    await rulesList().scrollIntoViewIfNeeded()
    const top = rulesList().locator('li[data-rule-id]').first()
    const from = await handle.boundingBox()
    const to = await top.boundingBox()
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2)
    await page.mouse.down()
    for (let i = 1; i <= 10; i++) {
      await page.mouse.move(from.x + from.width / 2, from.y + ((to.y + 10 - from.y) * i) / 10)
    }
    await page.mouse.up()
    await expectOrder(did, ['No withheld numbers', 'Grandma rings through', "Kids' bedtime"])
    const shown = await ruleNames()
    if (shown[0] !== 'No withheld numbers') throw new Error(`the page shows ${shown}`)
  })

  await ruleStep('keyboard reordering: Move down', async () => {
    await page.getByRole('button', { name: 'Move “No withheld numbers” down' }).click()
    await expectOrder(did, ['Grandma rings through', 'No withheld numbers', "Kids' bedtime"])
    await page.getByRole('button', { name: 'Move “No withheld numbers” up' }).focus()
    await page.keyboard.press('Enter')
    await expectOrder(did, ['No withheld numbers', 'Grandma rings through', "Kids' bedtime"])
    // Arrow keys on a rule's drag handle move it too.
    await page.getByRole('button', { name: /^Drag to reorder “Kids' bedtime”/ }).focus()
    await page.keyboard.press('ArrowUp')
    await expectOrder(did, ['No withheld numbers', "Kids' bedtime", 'Grandma rings through'])
    await page.keyboard.press('ArrowDown')
    await expectOrder(did, ['No withheld numbers', 'Grandma rings through', "Kids' bedtime"])
  })

  await ruleStep('a rule disabled and enabled again', async () => {
    const box = page.getByRole('checkbox', { name: 'Enabled: Grandma rings through' })
    await box.uncheck()
    await rulesList().getByText('Disabled').waitFor()
    const r = (await api('GET', `/api/dids/${did}/rules`)).body.items.find((x) => x.name === 'Grandma rings through')
    if (r.enabled) throw new Error('still enabled on the server')
    await box.check()
    await rulesList().getByText('Disabled').waitFor({ state: 'detached' })
  })

  const simulate = async ({ from, withheld, at }) => {
    if (withheld) await page.getByLabel('The caller withholds their number').check()
    else {
      await page.getByLabel('The caller withholds their number').uncheck()
      await page.getByLabel("Caller's number").fill(from)
    }
    if (at) await page.getByLabel("Date and time (the household's time)").fill(at)
    await page.getByRole('button', { name: 'What happens?' }).click()
    const answer = page.getByRole('status', { name: 'Simulator answer' })
    await answer.waitFor()
    return answer
  }
  const highlighted = () => rulesList().locator('li[aria-current=true] h3')

  await ruleStep('simulator: a withheld call meets the busy rule, highlighted', async () => {
    const answer = await simulate({ withheld: true })
    await answer.getByText('Reject as busy.').waitFor()
    await answer.getByText('The rule “No withheld numbers” decided').waitFor()
    await page.waitForFunction(() => document.querySelector('li[aria-current=true] h3'))
    const name = (await highlighted().innerText()).trim()
    if (name !== 'No withheld numbers') throw new Error(`highlighted: ${name}`)
  })
  await ruleStep('simulator: Monday 22:00 from a stranger rings only the kitchen', async () => {
    // 2026-12-07 is a Monday.
    const answer = await simulate({ from: '+15550001111', at: '2026-12-07T22:00' })
    await answer.getByText('The rule “Kids\' bedtime” decided').waitFor()
    await answer.getByText('Phones that ring, in order:').waitFor()
    await answer.getByRole('listitem').getByText('Kitchen').waitFor()
    if ((await highlighted().innerText()).trim() !== "Kids' bedtime") throw new Error('the bedtime rule is not highlighted')
  })
  if (rulesApi) await capture('rules-simulated')
  await ruleStep('simulator: at noon on Monday no rule matches, every phone rings', async () => {
    const answer = await simulate({ from: '+15550001111', at: '2026-12-07T12:00' })
    await answer.getByText('No rule matches').waitFor()
    if (await rulesList().locator('li[aria-current=true]').count()) throw new Error('a rule is still highlighted')
  })
  await ruleStep('simulator: grandma at Monday 22:00 is let through by the VIP rule', async () => {
    const answer = await simulate({ from: '+15559870001', at: '2026-12-07T22:00' })
    await answer.getByText('The rule “Grandma rings through” decided').waitFor()
  }, false)

  const headerDnd = () => page.getByRole('banner').getByRole('button', { name: /Do not disturb/ })
  await must(h, 'DND from the header: own Do-Not-Disturb on', async () => {
    await headerDnd().click()
    await page.waitForFunction(() => {
      const b = [...document.querySelectorAll('header button[aria-pressed]')][0]
      return b && b.getAttribute('aria-pressed') === 'true'
    })
    const states = (await api('GET', '/api/dnd')).body.items
    const mine = states.find((s) => s.scope === 'user' && s.subject_id === me.id)
    if (!mine || !mine.on) throw new Error(`the server has ${JSON.stringify(states)}`)
  })
  await h.step('DND changed elsewhere reaches the header live', async () => {
    const r = await api('PUT', `/api/users/${me.id}/dnd`, { on: false, schedule: null })
    if (r.status !== 200) throw new Error(`PUT answered ${r.status}`)
    await page.waitForFunction(
      () => {
        const b = [...document.querySelectorAll('header button[aria-pressed]')][0]
        return b && b.getAttribute('aria-pressed') === 'false'
      },
      null,
      { timeout: 10000 },
    )
  })

  await must(h, 'DND page: the kitchen phone quieted', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Do-Not-Disturb' }).click()
    await page.getByRole('heading', { name: 'Do-Not-Disturb', level: 1 }).waitFor()
    await page.getByRole('checkbox', { name: 'Do-Not-Disturb (Kitchen)' }).check()
    await page.getByText('Do-Not-Disturb on: Kitchen.').waitFor()
    const states = (await api('GET', '/api/dnd')).body.items
    if (!states.some((s) => s.scope === 'device' && s.on)) throw new Error(`the server has ${JSON.stringify(states)}`)
  })
  await h.step('DND page: house quiet hours painted and saved', async () => {
    const row = page.locator('section', { has: page.getByRole('heading', { name: 'The whole house' }) }).last()
    await row.getByText('Quiet hours (a schedule)').click()
    await row.getByLabel('Quiet on a schedule (Every phone)').check()
    await row.getByRole('button', { name: 'Fill or clear Saturday' }).click()
    await row.getByRole('button', { name: 'Save quiet hours' }).click()
    await page.getByText('Saved the quiet hours of Every phone.').waitFor()
    const sys = (await api('GET', '/api/dnd')).body.items.find((s) => s.scope === 'system')
    if (!sys || !sys.schedule || !sys.schedule.weekly.some((w) => w.days.includes('sat'))) throw new Error(JSON.stringify(sys))
  })
  await capture('dnd')
  await ruleStep('simulator: with the kitchen in DND, bedtime calls reach voicemail', async () => {
    await page.goto(`${h.base}/numbers/${did}/rules`)
    const answer = await simulate({ from: '+15550001111', at: '2026-12-07T22:00' })
    await answer.getByText('The rule “Kids\' bedtime” decided').waitFor()
    await answer.getByText('voicemail', { exact: false }).first().waitFor()
    const text = await answer.innerText()
    if (/Phones that ring, in order:[\s\S]*Kitchen/.test(text)) throw new Error(`the kitchen still rings: ${text}`)
  }, false)

  await must(h, 'auto-reply: during DND', async () => {
    await page.goto(`${h.base}/numbers/${did}/rules`)
    await page.getByRole('button', { name: 'Add an auto-reply' }).click()
    await page.getByLabel('Reply when').selectOption({ label: 'During Do-Not-Disturb' })
    await page.getByLabel('Reply text').fill("We're asleep: we'll call you back in the morning.")
    await page.getByRole('button', { name: 'Save auto-reply' }).click()
    await page.getByRole('list', { name: 'Auto-replies' }).getByText('During Do-Not-Disturb').waitFor()
    const items = (await api('GET', `/api/dids/${did}/auto-replies`)).body.items
    if (!items.some((a) => a.trigger.type === 'dnd' && a.enabled)) throw new Error(JSON.stringify(items))
  })
  await h.step('auto-reply: a keyword reply', async () => {
    await page.getByRole('button', { name: 'Add an auto-reply' }).click()
    await page.getByLabel('Reply when').selectOption({ label: 'The message has a keyword' })
    await page.getByLabel('Keywords').fill('hours, open')
    await page.getByLabel('Reply text').fill('We are open 9 to 5.')
    await page.getByRole('button', { name: 'Save auto-reply' }).click()
    await page.getByRole('list', { name: 'Auto-replies' }).getByText('The message contains “hours” or “open”').waitFor()
  })
  await capture('rules-full')

  await ruleStep('a rule edited and deleted', async () => {
    await page.getByRole('link', { name: 'Edit “No withheld numbers”' }).click()
    await page.getByRole('heading', { name: 'Change a rule', level: 1 }).waitFor()
    await page.getByRole('button', { name: 'Delete rule' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await page.waitForURL(`${h.base}/numbers/${did}/rules`)
    await expectOrder(did, ['Grandma rings through', "Kids' bedtime"])
  }, false)

  await h.step('a family member: own DND from the header, the DND page with only their phones', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(/\/login/)
    await page.getByLabel('Email').fill(env('FAMILY_EMAIL'))
    await page.getByLabel('Password').fill(env('ADMIN_PASSWORD'))
    await page.getByRole('button', { name: /sign in/i }).click()
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
    await headerDnd().click()
    await page.waitForFunction(() => {
      const b = [...document.querySelectorAll('header button[aria-pressed]')][0]
      return b && b.getAttribute('aria-pressed') === 'true'
    })
    await page.goto(`${h.base}/dnd`)
    await page.getByRole('heading', { name: 'You', level: 2 }).waitFor()
    await page.getByRole('checkbox', { name: 'Do-Not-Disturb (Bedroom)' }).waitFor()
    if (await page.getByRole('checkbox', { name: "Do-Not-Disturb (Sam's phone)" }).count()) throw new Error("Sam's phone is shown to Gran")
    if (await page.getByRole('checkbox', { name: 'Do-Not-Disturb (Every phone)' }).count()) throw new Error('the household switch is offered to a user')
  })
  await capture('dnd-family')

  await h.finish()
}

main().catch((e) => {
  console.log(`SUMMARY ${JSON.stringify({ ok: false, checks: [{ name: 'scenario', ok: false, detail: String((e && e.stack) || e) }] })}`)
  process.exit(1)
})
