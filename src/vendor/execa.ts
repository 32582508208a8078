/**
 * execa, which src/exec.ts imports when the first program runs. In the bundled commands
 * (scripts/bundle-hot-paths.mjs) this module is a bundle of its own, dist/vendor/execa.cjs,
 * required only then: execa takes ~40 ms to load, which commands that run no program
 * (list, hook validate, gc --dry-run on a directory …) never pay.
 */
export {execa} from 'execa'
