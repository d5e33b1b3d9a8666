// The signed-in account's own Do-Not-Disturb, for the header switch: loaded
// once, refetched when the server says a DND state changed (any event
// whose type starts with "dnd"), shared by every component that asks.
import { computed, ref } from 'vue'
import * as dnd from '../api/dnd.js'
import { EVENT_TYPES, subscribe } from './events.js'

/** The server-sent event types that mean "a DND state changed". */
export const DND_EVENTS = EVENT_TYPES.filter((t) => t.startsWith('dnd'))

const state = ref(null)
const available = ref(false)
let userId = null
let off = null
let users = 0

async function reload() {
  if (userId === null) return
  try {
    const { items } = await dnd.list()
    state.value = items.find((s) => s.scope === 'user' && s.subject_id === userId) || {
      scope: 'user',
      subject_id: userId,
      on: false,
      schedule: null,
      active: false,
    }
    available.value = true
  } catch {
    available.value = false
  }
}

/**
 * The account's DND: { state, available, active, set(on), reload }. Call
 * `start(userId)` when the account is known and `stop()` when leaving.
 */
export function useOwnDnd() {
  return {
    state,
    available,
    active: computed(() => !!(state.value && state.value.active)),
    on: computed(() => !!(state.value && state.value.on)),
    reload,
    start(id) {
      users += 1
      if (userId !== id) {
        userId = id
        state.value = null
        reload()
      }
      if (!off) off = subscribe(DND_EVENTS, () => reload())
    },
    stop() {
      users = Math.max(0, users - 1)
      if (users === 0 && off) {
        off()
        off = null
        userId = null
      }
    },
    async set(on) {
      const s = await dnd.setUser(userId, { on, schedule: state.value ? state.value.schedule : null })
      state.value = s
      return s
    },
  }
}
