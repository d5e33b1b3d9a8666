// Rules, their conditions and actions in plain words, and the blank forms
// the rule editor starts from.
import { scheduleText, emptySchedule } from './schedule.js'

export const CONDITION_TYPES = [
  { value: 'time', label: 'Time of day / dates' },
  { value: 'caller', label: 'Caller number' },
  { value: 'caller_list', label: 'Caller is in a list' },
  { value: 'withheld', label: 'Caller ID withheld' },
  { value: 'spam', label: 'Likely spam' },
  { value: 'verification', label: 'Caller verification (STIR/SHAKEN)' },
  { value: 'dnd', label: 'Do-Not-Disturb is on' },
]

export const ACTION_TYPES = [
  { value: 'ring_all', label: 'Ring every phone of the number' },
  { value: 'ring', label: 'Ring chosen phones' },
  { value: 'sequence', label: 'Ring phones one after another' },
  { value: 'forward', label: 'Forward to another number' },
  { value: 'voicemail', label: 'Straight to voicemail' },
  { value: 'reject', label: 'Reject the call' },
  { value: 'play', label: 'Play a message and hang up' },
]

export const MATCHES = [
  { value: 'exact', label: 'Is exactly' },
  { value: 'prefix', label: 'Starts with' },
  { value: 'regex', label: 'Matches the regular expression' },
]

/** Twilio's StirVerstat values; "none" stands for a call without one. */
export const VERSTATS = [
  { value: 'TN-Validation-Passed-A', label: 'Passed, full attestation (A)' },
  { value: 'TN-Validation-Passed-B', label: 'Passed, partial attestation (B)' },
  { value: 'TN-Validation-Passed-C', label: 'Passed, gateway attestation (C)' },
  { value: 'TN-Validation-Failed-A', label: 'Failed (A)' },
  { value: 'TN-Validation-Failed-B', label: 'Failed (B)' },
  { value: 'TN-Validation-Failed-C', label: 'Failed (C)' },
  { value: 'TN-Validation-Failed', label: 'Failed' },
  { value: 'No-TN-Validation', label: 'Not validated' },
  { value: 'none', label: 'No verification result' },
]

/** A new condition of `type` with its fields filled in. */
export function blankCondition(type) {
  switch (type) {
    case 'time':
      return { type, schedule: emptySchedule(), outside: false }
    case 'caller':
      return { type, match: 'exact', value: '' }
    case 'caller_list':
      return { type, list_id: null }
    case 'verification':
      return { type, verstat: ['TN-Validation-Failed-A', 'TN-Validation-Failed-B', 'TN-Validation-Failed-C', 'TN-Validation-Failed'] }
    default:
      return { type }
  }
}

/** A new action of `type` with its fields filled in. */
export function blankAction(type) {
  switch (type) {
    case 'ring':
      return { type, devices: [] }
    case 'sequence':
      return { type, steps: [{ devices: [], secs: 15 }] }
    case 'forward':
      return { type, number: '' }
    case 'reject':
      return { type, reason: 'busy' }
    case 'play':
      return { type, message: '' }
    default:
      return { type }
  }
}

const names = (ids, phones) =>
  (ids || []).map((id) => (phones.find((p) => p.id === id) || { name: `phone ${id}` }).name).join(', ') || 'no phone'

/**
 * A condition in words.
 * @param {any} c @param {{ lists?: any[] }} [ctx]
 */
export function conditionText(c, { lists = [] } = {}) {
  switch (c.type) {
    case 'time':
      return `the call comes ${c.outside ? 'outside' : 'during'} ${scheduleText(c.schedule)}`
    case 'caller':
      return c.match === 'prefix'
        ? `the caller's number starts with ${c.value}`
        : c.match === 'regex'
          ? `the caller's number matches /${c.value}/`
          : `the caller is ${c.value}`
    case 'caller_list': {
      const l = lists.find((x) => x.id === c.list_id)
      return `the caller is in ${l ? `“${l.name}”` : 'a caller list'}`
    }
    case 'withheld':
      return 'the caller ID is withheld'
    case 'spam':
      return 'the call is likely spam'
    case 'verification':
      return `caller verification is ${(c.verstat || []).join(' or ') || 'anything'}`
    case 'dnd':
      return 'Do-Not-Disturb is on'
    default:
      return c.type
  }
}

/**
 * An action in words.
 * @param {any} a @param {{ phones?: any[] }} [ctx]
 */
export function actionText(a, { phones = [] } = {}) {
  if (!a) return ''
  switch (a.type) {
    case 'ring_all':
      return 'ring every phone'
    case 'ring':
      return `ring ${names(a.devices, phones)}`
    case 'sequence':
      return `ring ${(a.steps || []).map((s) => `${names(s.devices, phones)} for ${s.secs} s`).join(', then ')}`
    case 'forward':
      return `forward to ${a.number}`
    case 'voicemail':
      return 'send to voicemail'
    case 'reject':
      return a.reason === 'busy' ? 'reject as busy' : 'reject the call'
    case 'play':
      return `play “${a.message}” and hang up`
    default:
      return a.type
  }
}

/** "If the caller is in “VIP”: ring Kitchen." */
export function ruleText(rule, ctx = {}) {
  const conds = rule.conditions || []
  const when = conds.length ? `If ${conds.map((c) => conditionText(c, ctx)).join(' and ')}` : 'Always'
  const what = actionText(rule.action, ctx)
  return `${when}: ${what.charAt(0).toUpperCase()}${what.slice(1)}.`
}

/**
 * Field errors of a server answer keyed by a normalised path
 * ("conditions[0].value" and "conditions.0.value" both give "conditions.0.value").
 * @param {Record<string, string>} errors  from formErrors()
 */
export function normaliseErrors(errors) {
  const out = {}
  for (const [k, v] of Object.entries(errors || {})) out[k.replace(/\[(\d+)\]/g, '.$1').replace(/^\./, '')] = v
  return out
}

/** Errors under `prefix.` (without it), for a sub-editor. */
export function errorsUnder(errors, prefix) {
  const out = {}
  for (const [k, v] of Object.entries(errors || {})) {
    if (k === prefix) out[''] = v
    else if (k.startsWith(`${prefix}.`)) out[k.slice(prefix.length + 1)] = v
  }
  return out
}
