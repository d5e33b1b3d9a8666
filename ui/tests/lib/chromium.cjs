// The Chromium switches every browser scenario launches with: no sandbox
// (root in CI), and nothing Chromium would fetch on its own (updates, sync,
// QUIC probes), so a scenario only ever talks to the appliance under test.
const QUIET_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
]

module.exports = { QUIET_FLAGS }
