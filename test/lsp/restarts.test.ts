import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartBudget } from '../../extension/lspRestarts.js';

describe('RestartBudget (the extension restarting paligemma lsp)', () => {
  it('restarts four times within three minutes, not a fifth; crashes older than the window no longer count', () => {
    const b = new RestartBudget(4, 180_000);
    assert.deepEqual(
      [0, 1000, 2000, 3000].map((t) => b.crashed(t)),
      [true, true, true, true],
    );
    assert.equal(b.crashed(4000), false, 'the fifth crash within three minutes');
    // Three minutes after the first crashes they drop out of the window.
    assert.equal(b.crashed(183_500), true);
  });

  it('starts over after a restart by the user', () => {
    const b = new RestartBudget(1, 60_000);
    assert.equal(b.crashed(0), true);
    assert.equal(b.crashed(1), false);
    b.reset();
    assert.equal(b.crashed(2), true);
  });
});
