// Live updates from GET /api/events (server-sent events). One EventSource is
// shared by the whole app and open only while some component listens. While
// the stream is down, useLiveResource polls instead.
import { onBeforeUnmount, onMounted, ref, shallowRef } from 'vue'

/** The event types the server sends (see the events contract). */
export const EVENT_TYPES = ['registration', 'call', 'voicemail', 'message', 'alert', 'dnd', 'resync']

const RETRY_MS = [1000, 2000, 5000, 10000, 30000]

/** The shared connection's state; `connected` is reactive. */
export const stream = {
  connected: ref(false),
  /** @type {EventSource|null} */
  source: null,
  /** @type {Set<{ types: Set<string>, handler: (type: string, data: any) => void }>} */
  listeners: new Set(),
  retries: 0,
  timer: null,
  /** The last event id seen, to resume after a new EventSource. */
  lastId: null,
  /** Replaced in tests. */
  EventSource: typeof EventSource === 'undefined' ? null : EventSource,
  url: '/api/events',
}

function dispatch(type, raw, id) {
  if (id) stream.lastId = id
  let data = {}
  try {
    data = raw ? JSON.parse(raw) : {}
  } catch {
    data = {}
  }
  for (const l of [...stream.listeners]) {
    // A resync means "refetch everything": every listener hears it.
    if (l.types.has(type) || type === 'resync') l.handler(type, data)
  }
}

function open() {
  if (stream.source || !stream.EventSource) return
  const url = stream.lastId ? `${stream.url}?last_event_id=${encodeURIComponent(stream.lastId)}` : stream.url
  const es = new stream.EventSource(url, { withCredentials: true })
  stream.source = es
  es.onopen = () => {
    stream.connected.value = true
    stream.retries = 0
  }
  for (const t of EVENT_TYPES) es.addEventListener(t, (ev) => dispatch(t, ev.data, ev.lastEventId))
  es.onerror = () => {
    // EventSource retries by itself on a dropped connection, but not after
    // an HTTP error (e.g. 401 or 404): then readyState is CLOSED. Either way
    // the data may be stale, so listeners fall back to polling until onopen.
    stream.connected.value = false
    if (es.readyState === 2) {
      stream.source = null
      const wait = RETRY_MS[Math.min(stream.retries, RETRY_MS.length - 1)]
      stream.retries += 1
      clearTimeout(stream.timer)
      stream.timer = setTimeout(() => {
        stream.timer = null
        if (stream.listeners.size) open()
      }, wait)
    }
  }
}

function close() {
  clearTimeout(stream.timer)
  stream.timer = null
  if (stream.source) stream.source.close()
  stream.source = null
  stream.connected.value = false
  stream.retries = 0
}

/**
 * Subscribes `handler` to the event `types` while the calling component is
 * mounted. Returns an unsubscribe function (also called on unmount).
 * @param {string[]} types
 * @param {(type: string, data: any) => void} handler
 */
export function subscribe(types, handler) {
  const entry = { types: new Set(types), handler }
  stream.listeners.add(entry)
  open()
  return () => {
    stream.listeners.delete(entry)
    if (stream.listeners.size === 0) close()
  }
}

/** @param {string[]} types @param {(type: string, data: any) => void} handler */
export function useServerEvents(types, handler) {
  let off = null
  onMounted(() => {
    off = subscribe(types, handler)
  })
  onBeforeUnmount(() => off && off())
  return stream.connected
}

/**
 * Loads a resource and keeps it fresh: refetched on the given events (and on
 * resync), polled every `pollMs` only while the stream is down.
 * @template T
 * @param {() => Promise<T>} loader
 * @param {{ events?: string[], pollMs?: number, immediate?: boolean }} [opts]
 */
export function useLiveResource(loader, { events = [], pollMs = 15000 } = {}) {
  const data = shallowRef(null)
  const error = shallowRef(null)
  const loading = ref(false)
  let alive = true
  let pending = null
  let again = false
  let poll = null

  async function reload() {
    // At most one request in flight; a change while it runs asks once more.
    if (pending) {
      again = true
      return pending
    }
    loading.value = true
    pending = (async () => {
      do {
        again = false
        try {
          const v = await loader()
          if (alive) {
            data.value = v
            error.value = null
          }
        } catch (e) {
          if (alive) error.value = e
        }
      } while (again && alive)
    })()
    try {
      await pending
    } finally {
      pending = null
      loading.value = false
    }
  }

  function tick() {
    if (!alive) return
    if (!stream.connected.value) reload()
    poll = setTimeout(tick, pollMs)
  }

  let off = null
  onMounted(() => {
    reload()
    if (events.length) off = subscribe(events, () => reload())
    poll = setTimeout(tick, pollMs)
  })
  onBeforeUnmount(() => {
    alive = false
    clearTimeout(poll)
    if (off) off()
  })
  return { data, error, loading, reload }
}
