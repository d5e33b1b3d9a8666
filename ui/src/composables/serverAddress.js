// The address phones use for the SIP server: this machine's LAN address
// when the server reports one (admins), else the host name the browser used.
import * as setupApi from '../api/setup.js'

let cached = null

/** @param {boolean} [isAdmin] only admins may read the network plan @returns {Promise<string>} */
export async function phoneServerAddress(isAdmin = true) {
  if (cached) return cached
  if (!isAdmin) return window.location.hostname
  try {
    const plan = await setupApi.network()
    if (plan.lan_addresses && plan.lan_addresses.length) cached = plan.lan_addresses[0]
  } catch {
    // Not an admin, or the plan is unavailable: fall back to the browser's view.
  }
  return cached || window.location.hostname
}
