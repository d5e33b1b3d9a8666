// What the rule pages of one number load together: the number, its phones
// (those of the accounts it belongs to) and the caller lists.
import * as dids from '../../../api/dids.js'
import * as devices from '../../../api/devices.js'
import * as rules from '../../../api/rules.js'

/**
 * Caller lists that cannot be loaded leave the condition without choices
 * (`listsError` says why) rather than the whole page without the number.
 * @returns {Promise<{ did: any, phones: any[], allPhones: any[], lists: any[], listsError: any }>}
 */
export async function loadNumberContext(didId) {
  let listsError = null
  const [did, phoneList, lists] = await Promise.all([
    dids.getDid(didId),
    devices.list({ per_page: 100 }),
    rules.callerLists().catch((e) => {
      listsError = e
      return { items: [] }
    }),
  ])
  const owners = new Set(did.user_ids || [])
  const allPhones = phoneList.items
  return {
    did,
    allPhones,
    phones: allPhones.filter((p) => p.user_id !== null && owners.has(p.user_id)),
    lists: lists.items,
    listsError,
  }
}
