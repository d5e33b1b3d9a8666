// Sections of the app: the router's routes and the shell's navigation are built from this list.
export const sections = [
  { path: '/', name: 'dashboard', title: 'Dashboard' },
  { path: '/phones', name: 'phones', title: 'Phones' },
  { path: '/numbers', name: 'numbers', title: 'Numbers' },
  { path: '/calls', name: 'calls', title: 'Calls' },
  { path: '/voicemail', name: 'voicemail', title: 'Voicemail' },
  { path: '/messages', name: 'messages', title: 'Messages' },
  { path: '/settings', name: 'settings', title: 'Settings' },
]
