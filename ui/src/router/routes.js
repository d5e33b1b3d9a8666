// The one route table: the router, the guards and the navigation are built
// from it. meta: title (document title and nav label), nav ('main',
// 'settings' or null: not in the navigation), role (the least role that may
// open it), public (no session needed). Every page is loaded lazily.

// Static import() calls (Vite needs literal paths to split the bundle).
const settingsPages = {
  SystemSettings: () => import('../views/settings/SystemSettings.vue'),
  TwilioSettings: () => import('../views/settings/TwilioSettings.vue'),
  SipSettings: () => import('../views/settings/SipSettings.vue'),
  HoldMusicSettings: () => import('../views/settings/HoldMusicSettings.vue'),
  BlocklistSettings: () => import('../views/settings/BlocklistSettings.vue'),
  AlertsSettings: () => import('../views/settings/AlertsSettings.vue'),
  NotificationSettings: () => import('../views/settings/NotificationSettings.vue'),
  CertificateSettings: () => import('../views/settings/CertificateSettings.vue'),
  NetworkSettings: () => import('../views/settings/NetworkSettings.vue'),
  DiagnosticsSettings: () => import('../views/settings/DiagnosticsSettings.vue'),
}

/** @type {import('vue-router').RouteRecordRaw[]} */
export const routes = [
  {
    path: '/login',
    name: 'login',
    component: () => import('../views/LoginView.vue'),
    meta: { title: 'Sign in', nav: null, public: true, bare: true },
  },
  {
    path: '/setup',
    name: 'setup',
    component: () => import('../views/setup/SetupView.vue'),
    meta: { title: 'Set up Homeline', nav: null, public: true, bare: true },
  },
  {
    path: '/',
    name: 'dashboard',
    component: () => import('../views/dashboard/DashboardView.vue'),
    meta: { title: 'Dashboard', nav: 'main', role: 'admin', icon: 'home' },
  },
  {
    path: '/phones',
    name: 'phones',
    component: () => import('../views/phones/PhonesView.vue'),
    meta: { title: 'Phones', nav: 'main', role: 'user', icon: 'phone' },
  },
  {
    path: '/numbers',
    name: 'numbers',
    component: () => import('../views/numbers/NumbersView.vue'),
    meta: { title: 'Numbers', nav: 'main', role: 'admin', icon: 'hash' },
  },
  {
    path: '/numbers/caller-lists',
    name: 'caller-lists',
    component: () => import('../views/numbers/rules/CallerListsView.vue'),
    meta: { title: 'Caller lists', nav: null, role: 'admin' },
  },
  {
    path: '/numbers/:id(\\d+)/rules',
    name: 'number-rules',
    component: () => import('../views/numbers/rules/RulesView.vue'),
    meta: { title: 'Rules', nav: null, role: 'admin' },
  },
  {
    path: '/numbers/:id(\\d+)/rules/new',
    name: 'number-rule-new',
    component: () => import('../views/numbers/rules/RuleEditView.vue'),
    meta: { title: 'Add a rule', nav: null, role: 'admin' },
  },
  {
    path: '/numbers/:id(\\d+)/rules/:ruleId(\\d+)',
    name: 'number-rule',
    component: () => import('../views/numbers/rules/RuleEditView.vue'),
    meta: { title: 'Change a rule', nav: null, role: 'admin' },
  },
  {
    path: '/dnd',
    name: 'dnd',
    component: () => import('../views/dnd/DndView.vue'),
    meta: { title: 'Do-Not-Disturb', nav: 'main', role: 'user', icon: 'moon' },
  },
  {
    path: '/calls',
    name: 'calls',
    component: () => import('../views/calls/LiveCallsView.vue'),
    meta: { title: 'Calls', nav: 'main', role: 'admin', icon: 'calls' },
  },
  {
    path: '/calls/history',
    name: 'call-history',
    component: () => import('../views/calls/CallHistoryView.vue'),
    meta: { title: 'Call history', nav: 'main', role: 'user', icon: 'history' },
  },
  {
    path: '/users',
    name: 'users',
    component: () => import('../views/users/UsersView.vue'),
    meta: { title: 'Users', nav: 'main', role: 'admin', icon: 'users' },
  },
  {
    path: '/settings',
    component: () => import('../views/settings/SettingsLayout.vue'),
    meta: { title: 'Settings', nav: 'main', role: 'admin', icon: 'settings' },
    children: [
      { path: '', name: 'settings', redirect: { name: 'settings-system' } },
      ...[
        ['system', 'System', 'SystemSettings'],
        ['twilio', 'Twilio', 'TwilioSettings'],
        ['sip', 'SIP & security', 'SipSettings'],
        ['hold-music', 'Hold music', 'HoldMusicSettings'],
        ['blocklist', 'Blocklist', 'BlocklistSettings'],
        ['notifications', 'Notifications', 'NotificationSettings'],
        ['alerts', 'Alerts & jobs', 'AlertsSettings'],
        ['certificate', 'HTTPS certificate', 'CertificateSettings'],
        ['network', 'Router & address', 'NetworkSettings'],
        ['diagnostics', 'Diagnostics', 'DiagnosticsSettings'],
      ].map(([path, title, file]) => ({
        path,
        name: `settings-${path}`,
        component: settingsPages[file],
        meta: { title, nav: 'settings', role: 'admin' },
      })),
    ],
  },
  {
    path: '/:pathMatch(.*)*',
    name: 'not-found',
    component: () => import('../views/NotFoundView.vue'),
    meta: { title: 'Page not found', nav: null, role: 'user' },
  },
]

const RANK = { user: 1, admin: 2 }

/** Whether an account of `role` may open a route needing `needed`. */
export function allows(role, needed) {
  return (RANK[role] || 0) >= (RANK[needed || 'user'] || 1)
}

/** Where an account lands: the first main-nav page its role may open. */
export function homeFor(role) {
  return role === 'admin' ? '/' : '/phones'
}

/** The navigation entries of a section for a role: [{ path, name, title, icon }]. */
export function navEntries(section, role, table = routes) {
  const out = []
  const walk = (list, base) => {
    for (const r of list) {
      const path = r.path.startsWith('/') ? r.path : `${base}/${r.path}`
      if (r.meta && r.meta.nav === section && allows(role, r.meta.role)) {
        out.push({ path, name: r.name, title: r.meta.title, icon: r.meta.icon })
      }
      if (r.children) walk(r.children, path)
    }
  }
  walk(table, '')
  return out
}
