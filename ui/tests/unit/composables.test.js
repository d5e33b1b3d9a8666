import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, h, nextTick } from 'vue'
import { mount } from '@vue/test-utils'
import { stream, subscribe, useLiveResource, useServerEvents } from '../../src/composables/events.js'
import { confirmState, answerConfirm, useConfirm } from '../../src/composables/confirm.js'
import { toastState, useToast } from '../../src/composables/toast.js'

/** A fake EventSource the tests drive by hand. */
class FakeSource {
  static all = []
  constructor(url) {
    this.url = url
    this.readyState = 0
    this.listeners = {}
    this.closed = false
    FakeSource.all.push(this)
  }
  addEventListener(type, fn) {
    ;(this.listeners[type] ||= []).push(fn)
  }
  close() {
    this.closed = true
    this.readyState = 2
  }
  // test helpers
  opened() {
    this.readyState = 1
    this.onopen && this.onopen()
  }
  emit(type, data, id) {
    for (const fn of this.listeners[type] || []) fn({ data: JSON.stringify(data), lastEventId: id })
  }
  fail(closed) {
    this.readyState = closed ? 2 : 0
    this.onerror && this.onerror()
  }
}

beforeEach(() => {
  FakeSource.all = []
  stream.EventSource = FakeSource
  stream.lastId = null
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
  await nextTick()
}

describe('server events', () => {
  it('shares one EventSource and closes it when the last listener leaves', () => {
    const a = subscribe(['registration'], () => {})
    const b = subscribe(['call'], () => {})
    expect(FakeSource.all.length).toBe(1)
    expect(FakeSource.all[0].url).toBe('/api/events')
    a()
    expect(FakeSource.all[0].closed).toBe(false)
    b()
    expect(FakeSource.all[0].closed).toBe(true)
  })

  it('delivers only the subscribed types, and resync to everyone', () => {
    const seen = []
    const off = subscribe(['registration'], (t, d) => seen.push([t, d]))
    const es = FakeSource.all[0]
    es.opened()
    es.emit('call', { call_id: 1 }, '1')
    es.emit('registration', { device_id: 3, registered: true }, '2')
    es.emit('resync', {}, '3')
    expect(seen).toEqual([
      ['registration', { device_id: 3, registered: true }],
      ['resync', {}],
    ])
    off()
  })

  it('after an HTTP error reconnects later, resuming from the last id', () => {
    const off = subscribe(['call'], () => {})
    const es = FakeSource.all[0]
    es.opened()
    es.emit('call', { call_id: 'x' }, '41')
    expect(stream.connected.value).toBe(true)
    es.fail(true)
    expect(stream.connected.value).toBe(false)
    expect(FakeSource.all.length).toBe(1)
    vi.advanceTimersByTime(1000)
    expect(FakeSource.all.length).toBe(2)
    expect(FakeSource.all[1].url).toBe('/api/events?last_event_id=41')
    off()
  })

  it('useServerEvents subscribes while mounted', async () => {
    const handler = vi.fn()
    const C = defineComponent({
      setup() {
        useServerEvents(['alert'], handler)
        return () => h('div')
      },
    })
    const w = mount(C)
    FakeSource.all[0].emit('alert', { alert_id: 1, change: 'raised' })
    expect(handler).toHaveBeenCalledWith('alert', { alert_id: 1, change: 'raised' })
    w.unmount()
    expect(FakeSource.all[0].closed).toBe(true)
  })
})

describe('useLiveResource', () => {
  function host(loader, opts) {
    let api
    const C = defineComponent({
      setup() {
        api = useLiveResource(loader, opts)
        return () => h('div')
      },
    })
    const w = mount(C)
    return { w, api: () => api }
  }

  it('loads on mount and refetches on its events', async () => {
    let n = 0
    const loader = vi.fn(async () => ++n)
    const { w, api } = host(loader, { events: ['registration'] })
    await flush()
    expect(api().data.value).toBe(1)
    FakeSource.all[0].opened()
    FakeSource.all[0].emit('registration', { device_id: 1, registered: false })
    await flush()
    expect(api().data.value).toBe(2)
    FakeSource.all[0].emit('message', {})
    await flush()
    expect(loader).toHaveBeenCalledTimes(2)
    w.unmount()
  })

  it('polls only while the stream is down', async () => {
    const loader = vi.fn(async () => 'x')
    const { w } = host(loader, { events: ['call'], pollMs: 1000 })
    await flush()
    expect(loader).toHaveBeenCalledTimes(1)
    // Stream not open yet: polling.
    vi.advanceTimersByTime(1000)
    await flush()
    expect(loader).toHaveBeenCalledTimes(2)
    FakeSource.all[0].opened()
    vi.advanceTimersByTime(3000)
    await flush()
    expect(loader).toHaveBeenCalledTimes(2)
    FakeSource.all[0].fail(false)
    vi.advanceTimersByTime(1000)
    await flush()
    expect(loader).toHaveBeenCalledTimes(3)
    w.unmount()
    vi.advanceTimersByTime(5000)
    await flush()
    expect(loader).toHaveBeenCalledTimes(3)
  })

  it('keeps the error and clears it on the next success', async () => {
    let fail = true
    const loader = async () => {
      if (fail) throw new Error('boom')
      return 'ok'
    }
    const { w, api } = host(loader, {})
    await flush()
    expect(api().error.value.message).toBe('boom')
    fail = false
    await api().reload()
    expect(api().error.value).toBeNull()
    expect(api().data.value).toBe('ok')
    w.unmount()
  })
})

describe('confirm and toast', () => {
  it('confirm resolves with the answer', async () => {
    const { confirm } = useConfirm()
    const p = confirm({ title: 'Delete?', danger: true })
    expect(confirmState.open).toBe(true)
    expect(confirmState.options.confirmLabel).toBe('Confirm')
    answerConfirm(true)
    expect(await p).toBe(true)
    expect(confirmState.open).toBe(false)
  })

  it('a second confirm cancels the first', async () => {
    const { confirm } = useConfirm()
    const first = confirm({ title: 'A' })
    const second = confirm({ title: 'B' })
    expect(await first).toBe(false)
    answerConfirm(true)
    expect(await second).toBe(true)
  })

  it('toasts show an ApiError message and expire', () => {
    const toast = useToast()
    toast.error({ message: 'the server said no' })
    toast.success('Saved')
    expect(toastState.items.map((t) => t.text)).toEqual(['the server said no', 'Saved'])
    vi.advanceTimersByTime(8000)
    expect(toastState.items).toEqual([])
  })
})
