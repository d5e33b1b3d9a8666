import { describe, expect, it, vi } from 'vitest'
import { afterLogin, guard, sessionLost } from '../../src/router/guards.js'
import { allows, homeFor, navEntries, routes } from '../../src/router/routes.js'

function session({ completed = true, adminExists = true, user = null } = {}) {
  return {
    loadSetup: async () => ({ setup_completed: completed, admin_exists: adminExists }),
    load: async () => user,
  }
}
const to = (path, meta = {}, name = undefined) => ({ path, fullPath: path, meta, name })
const admin = { role: 'admin' }
const user = { role: 'user' }

describe('guard', () => {
  it('sends everything to /setup until setup is done', async () => {
    const s = session({ completed: false, adminExists: false })
    expect(await guard(to('/phones', { role: 'user' }, 'phones'), s)).toEqual({ path: '/setup' })
    expect(await guard(to('/login', { public: true }, 'login'), s)).toEqual({ path: '/setup' })
    expect(await guard(to('/setup', { public: true }, 'setup'), s)).toBe(true)
  })

  it('lets login through during setup once an admin exists (to resume the wizard)', async () => {
    const s = session({ completed: false, adminExists: true })
    expect(await guard(to('/login', { public: true }, 'login'), s)).toBe(true)
  })

  it('without a session goes to login with next', async () => {
    const s = session({ user: null })
    expect(await guard(to('/phones?x=1', { role: 'user' }, 'phones'), s)).toEqual({
      path: '/login',
      query: { next: '/phones?x=1' },
    })
    expect(await guard(to('/', { role: 'admin' }, 'dashboard'), s)).toEqual({ path: '/login' })
  })

  it('public pages need no session', async () => {
    expect(await guard(to('/login', { public: true }, 'login'), session())).toBe(true)
  })

  it('a user without the role goes to their home page', async () => {
    const s = session({ user })
    expect(await guard(to('/users', { role: 'admin' }, 'users'), s)).toBe('/phones')
    expect(await guard(to('/', { role: 'admin' }, 'dashboard'), s)).toBe('/phones')
    expect(await guard(to('/phones', { role: 'user' }, 'phones'), s)).toBe(true)
  })

  it('an admin opens everything', async () => {
    const s = session({ user: admin })
    expect(await guard(to('/users', { role: 'admin' }, 'users'), s)).toBe(true)
    expect(await guard(to('/phones', { role: 'user' }, 'phones'), s)).toBe(true)
  })
})

describe('afterLogin', () => {
  it('follows next only inside the app', () => {
    expect(afterLogin('/phones', 'admin')).toBe('/phones')
    expect(afterLogin('//evil.example/x', 'admin')).toBe('/')
    expect(afterLogin('https://evil.example/', 'user')).toBe('/phones')
    expect(afterLogin('/login?next=/x', 'admin')).toBe('/')
    expect(afterLogin(undefined, 'user')).toBe('/phones')
  })
})

describe('route table', () => {
  it('every route has a title, a nav section and a role or is public', () => {
    const walk = (list) => {
      for (const r of list) {
        if (r.redirect) continue
        expect(r.meta, r.path).toBeTruthy()
        expect(typeof r.meta.title, r.path).toBe('string')
        expect(r.meta.nav === null || ['main', 'settings'].includes(r.meta.nav), r.path).toBe(true)
        expect(r.meta.public === true || ['admin', 'user'].includes(r.meta.role), r.path).toBe(true)
        if (r.component) expect(typeof r.component, `${r.path} is lazy`).toBe('function')
        if (r.children) walk(r.children)
      }
    }
    walk(routes)
  })

  it('roles rank user below admin', () => {
    expect(allows('admin', 'user')).toBe(true)
    expect(allows('user', 'admin')).toBe(false)
    expect(allows(null, 'user')).toBe(false)
    expect(homeFor('admin')).toBe('/')
  })

  it('navigation follows the role', () => {
    const adminNav = navEntries('main', 'admin').map((e) => e.path)
    const userNav = navEntries('main', 'user').map((e) => e.path)
    expect(adminNav).toContain('/users')
    expect(userNav).not.toContain('/users')
    expect(userNav).toContain('/phones')
    expect(navEntries('settings', 'admin').map((e) => e.path)).toContain('/settings/blocklist')
  })
})

describe('sessionLost (a 401 anywhere)', () => {
  const router = (fullPath, meta = {}) => ({ currentRoute: { value: { fullPath, meta } }, replace: vi.fn() })
  it('ends the session and goes to login with next', () => {
    const r = router('/phones?page=2', { role: 'user' })
    const s = { user: { id: 1 }, ended: vi.fn(function () { this.user = null }) }
    sessionLost(r, s)
    expect(s.ended).toHaveBeenCalled()
    expect(s.user).toBeNull()
    expect(r.replace).toHaveBeenCalledWith({ path: '/login', query: { next: '/phones?page=2' } })
  })
  it('stays put on a public page or when nobody was signed in', () => {
    const r1 = router('/login', { public: true })
    sessionLost(r1, { user: { id: 1 }, ended() {} })
    expect(r1.replace).not.toHaveBeenCalled()
    const r2 = router('/phones', { role: 'user' })
    sessionLost(r2, { user: null, ended() {} })
    expect(r2.replace).not.toHaveBeenCalled()
  })
})
