import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ortEnv, randomModelFolder } from '../../daemon/cli/bench.js';

test('bench rows record the ORT_* switches they ran with, and only those', () => {
  assert.equal(ortEnv({ PATH: '/bin', NODE_OPTIONS: '--x' }), undefined);
  assert.deepEqual(ortEnv({ ORT_FPA_INTB_GEMM: '1', PATH: '/bin', ORT_A: 'x' }), { ORT_A: 'x', ORT_FPA_INTB_GEMM: '1' });
});

test('each conversion option that changes the graphs has its own cache folder', () => {
  const base = randomModelFolder('paligemma-3b-224', { dtype: 'int4', layers: 2 });
  assert.equal(base, 'paligemma-3b-224-int4-L2-Vall-visfp32-acc0');
  const names = [
    base,
    randomModelFolder('paligemma-3b-224', { dtype: 'int4', layers: 2, activations: 'fp16' }),
    randomModelFolder('paligemma-3b-224', { dtype: 'int4', layers: 2, accuracyLevel: 4 }),
    randomModelFolder('paligemma-3b-224', { dtype: 'int4', layers: 2, visionDtype: 'fp16' }),
    randomModelFolder('paligemma-3b-224', { dtype: 'int4', layers: 2, standardOps: true }),
    randomModelFolder('paligemma-3b-224', { dtype: 'fp16', layers: 2 }),
  ];
  assert.equal(new Set(names).size, names.length, names.join('\n'));
  // fp32 activations are the default: the same folder as before the option existed
  assert.equal(randomModelFolder('paligemma-3b-224', { dtype: 'int4', layers: 2, activations: 'fp32' }), base);
});
