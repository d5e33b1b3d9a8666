// What the rule pages of one number load together: the number, its phones
// (those of the accounts it belongs to) and the caller lists.
import * as dids from '../../../api/dids.js'
import * as devices from '../../../api/devices.js'
import * as rules from '../../../api/rules.js'

/** @returns {Promise<{ did: any, phones: any[], allPhones: any[], lists: any[] }>} */
export async function loadNumberContext(didId) {
  const [did, phoneList, lists] = await Promise.all([
    dids.getDid(didId),
    devices.list({ per_page: 100 }),
    rules.callerLists(),
  ])
  const owners = new Set(did.user_ids || [])
  const allPhones = phoneList.items
  return {
    did,
    allPhones,
    phones: allPhones.filter((p) => p.user_id !== null && owners.has(p.user_id)),
    lists: lists.items,
  }
}
