import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import tailwindcss from '@tailwindcss/vite'

// The Homeline server (Rust) listens on 127.0.0.1:8080 during development.
const server = 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [vue(), tailwindcss()],
  base: '/',
  define: {
    // Only the Composition API (<script setup>) is used; drop Options API support.
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: {
    // The bundle is committed and embedded into the server binary: keep it
    // reproducible (content-hashed names, no source maps, no absolute paths).
    outDir: '../ui-dist',
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    rollupOptions: {
      // Hashes of letters and digits only: the server treats `name-HASH.ext`
      // under assets/ as immutable and a '-' inside the hash would hide it.
      output: { hashCharacters: 'base36' },
    },
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': server,
      '/health': server,
    },
  },
  test: {
    // Unit tests (npm test): the API client, the guards, the composables.
    environment: 'happy-dom',
    include: ['tests/unit/**/*.test.js'],
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    proxy: {
      '/api': server,
      '/health': server,
    },
  },
})
