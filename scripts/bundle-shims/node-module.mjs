// node:module as the bundles see it (scripts/bundle-hot-paths.mjs): our modules use it
// only for createRequire(import.meta.url), to load a module when first needed, and in a
// CommonJS bundle that is the bundle's own `require`. Loading node:module itself costs
// every start on Node.js 20 ~5 M instructions (~2 ms): it brings the ES module loader
// and source maps along. The bundle's `require` resolves from the bundle's own file, not
// from the module's import.meta.url, which is the same for built-ins and packages but
// not for a relative path: refused, so that it cannot load the wrong file.
export function createRequire() {
  return (id) => {
    if (id.startsWith('.')) throw new Error(`bundled createRequire: a relative path (${id}) would resolve from the bundle's file: load it by a package name or as a built-in`)
    return require(id)
  }
}
