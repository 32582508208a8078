// Placeholder: replaced by the test-infrastructure work (starts docker-registry).
export default async function setup(): Promise<void> {}
