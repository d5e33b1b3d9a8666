// The address phones use for the SIP server: this machine's LAN address
// when the server reports one (admins), else the host name the browser used.
import * as setupApi from '../api/setup.js'

let cached = null

/** @returns {Promise<string>} */
export async function phoneServerAddress() {
  if (cached) return cached
  try {
    const plan = await setupApi.network()
    if (plan.lan_addresses && plan.lan_addresses.length) cached = plan.lan_addresses[0]
  } catch {
    // Not an admin, or the plan is unavailable: fall back to the browser's view.
  }
  return cached || window.location.hostname
}
