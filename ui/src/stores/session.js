// The signed-in account, from GET /api/me, and the setup state, from
// GET /api/setup/status. The router's guards read both; a 401 from any API
// call ends the session (see main.js).
import { defineStore } from 'pinia'
import * as auth from '../api/auth.js'
import * as setup from '../api/setup.js'

export const useSession = defineStore('session', {
  state: () => ({
    /** @type {import('../api/auth.js').User|null} */
    user: null,
    /** whether /api/me has been asked since the last change */
    checked: false,
    /** @type {import('../api/setup.js').SetupStatus|null} */
    setup: null,
  }),
  getters: {
    role: (s) => (s.user ? s.user.role : null),
    isAdmin: (s) => !!s.user && s.user.role === 'admin',
  },
  actions: {
    /** Loads the account once; null without a session. Other errors propagate. */
    async load(force = false) {
      if (this.checked && !force) return this.user
      try {
        const { user } = await auth.me()
        this.user = user
      } catch (e) {
        if (e && e.status === 401) this.user = null
        else throw e
      }
      this.checked = true
      return this.user
    },
    /** Loads the setup status once (it changes only through the wizard). */
    async loadSetup(force = false) {
      if (this.setup && !force) return this.setup
      this.setup = await setup.status()
      return this.setup
    },
    signedIn(user) {
      this.user = user
      this.checked = true
    },
    /** Forgets the account (after logout or a 401). */
    ended() {
      this.user = null
      this.checked = true
    },
    async logout() {
      try {
        await auth.logout()
      } finally {
        this.ended()
      }
    },
  },
})
