/**
 * Test harness: real services under temp dirs on 127.0.0.1, with readiness checks and guaranteed teardown.
 *
 *   import { startRegistry, pushBusyboxImage, startContainerd, keepEvidence } from '../harness/index.js';
 *   let reg: StartedRegistry;
 *   keepEvidence(() => [reg]);                       // logs → test-results/<test>/ when a test fails
 *   beforeAll(async () => { reg = await startRegistry({ tls: true, auth: true }); });
 *   afterAll(async () => { await reg?.stop(); });    // or `await using reg = await startRegistry()` inside a test
 *
 * Modules: services/registry.ts, services/containerd.ts, services/dockerd.ts, images.ts, wait.ts, evidence.ts,
 * proc.ts (process/mount inspection used by teardown and by tests that assert "nothing left behind"), cri.ts (a CRI
 * runtime.v1 gRPC client: the kubelet's side of containerd's CRI plugin), cni.ts (a test pod network).
 */
export * from './wait.js';
export * from './evidence.js';
export * from './proc.js';
export * from './images.js';
export * from './services/registry.js';
export * from './services/containerd.js';
export * from './services/dockerd.js';
export * from './cri.js';
export * from './cni.js';
