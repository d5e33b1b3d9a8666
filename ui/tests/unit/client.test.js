import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, formErrors, request, setUnauthorizedHandler, withQuery } from '../../src/api/client.js'

function reply(status, body, headers = {}) {
  return vi.fn(async () => ({
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (k) => headers[k] ?? null },
    text: async () => (body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)),
  }))
}

afterEach(() => {
  vi.unstubAllGlobals()
  setUnauthorizedHandler(null)
})

describe('request', () => {
  it('sends JSON with the CSRF header and returns the body', async () => {
    const fetch = reply(200, { ok: 1 })
    vi.stubGlobal('fetch', fetch)
    expect(await request('POST', '/api/x', { a: 1 })).toEqual({ ok: 1 })
    const [path, init] = fetch.mock.calls[0]
    expect(path).toBe('/api/x')
    expect(init.method).toBe('POST')
    expect(init.headers['X-Requested-With']).toBe('homeline')
    expect(init.headers['Content-Type']).toBe('application/json')
    expect(init.body).toBe('{"a":1}')
  })

  it('returns null for an empty 2xx', async () => {
    vi.stubGlobal('fetch', reply(204))
    expect(await request('DELETE', '/api/x')).toBeNull()
  })

  it('throws the error format as an ApiError with code, status, details', async () => {
    vi.stubGlobal(
      'fetch',
      reply(400, {
        error: { code: 'VALIDATION_ERROR', message: 'invalid phone', details: [{ field: 'name', message: 'required' }] },
      }),
    )
    const err = await request('POST', '/api/devices', {}).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.code).toBe('VALIDATION_ERROR')
    expect(err.status).toBe(400)
    expect(err.message).toBe('invalid phone')
    expect(formErrors(err)).toEqual({ name: 'required' })
  })

  it('reads Retry-After on 429', async () => {
    vi.stubGlobal('fetch', reply(429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'Retry-After': '30' }))
    const err = await request('POST', '/api/auth/login', {}).catch((e) => e)
    expect(err.retryAfter).toBe(30)
  })

  it('a network failure is NETWORK_ERROR', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('down'))))
    const err = await request('GET', '/api/x').catch((e) => e)
    expect(err.code).toBe('NETWORK_ERROR')
    expect(err.status).toBe(0)
  })

  it('a non-JSON error is BAD_RESPONSE', async () => {
    vi.stubGlobal('fetch', reply(502, '<html>bad gateway</html>'))
    const err = await request('GET', '/api/x').catch((e) => e)
    expect(err.code).toBe('BAD_RESPONSE')
  })

  it('a 401 calls the unauthorized handler, except for the login call', async () => {
    const handler = vi.fn()
    setUnauthorizedHandler(handler)
    vi.stubGlobal('fetch', reply(401, { error: { code: 'AUTHENTICATION_ERROR', message: 'log in first' } }))
    await request('GET', '/api/devices').catch(() => {})
    expect(handler).toHaveBeenCalledTimes(1)
    expect(handler.mock.calls[0][0].status).toBe(401)
    await request('POST', '/api/auth/login', {}).catch(() => {})
    expect(handler).toHaveBeenCalledTimes(1)
  })
})

describe('helpers', () => {
  it('formErrors keeps the first message per field and ignores other errors', () => {
    const err = new ApiError('x', {
      details: [
        { field: 'a', message: 'one' },
        { field: 'a', message: 'two' },
        { field: 'b', message: 'three' },
        { nonsense: true },
      ],
    })
    expect(formErrors(err)).toEqual({ a: 'one', b: 'three' })
    expect(formErrors(new Error('x'))).toEqual({})
    expect(formErrors(null)).toEqual({})
  })

  it('withQuery drops empty values and encodes the rest', () => {
    expect(withQuery('/api/cdrs', { page: 2, number: '+1 555', since: '', x: null })).toBe(
      '/api/cdrs?page=2&number=%2B1+555',
    )
    expect(withQuery('/api/cdrs')).toBe('/api/cdrs')
  })
})
