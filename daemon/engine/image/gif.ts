// The colour PIL gives the transparent pixels of a GIF's first frame. PIL's convert("RGB") shows
// the palette entry of the transparent index there, while libvips decodes them as transparent
// black; to feed the model what the reference feeds it we read that entry from the file.

/** RGB of the first frame's transparent palette entry, or null (no transparency, or not parseable). */
export function gifTransparentColour(data: Uint8Array): [number, number, number] | null {
  const at = (i: number) => (i < data.length ? data[i] : -1);
  if (data.length < 13 || String.fromCharCode(...data.subarray(0, 3)) !== 'GIF') return null;
  const screen = at(10);
  let pos = 13;
  let palette: { offset: number; entries: number } | null = null;
  if (screen & 0x80) {
    palette = { offset: pos, entries: 2 << (screen & 7) };
    pos += palette.entries * 3;
  }
  let transparent = -1;
  while (pos < data.length) {
    const block = at(pos);
    if (block === 0x21) {
      const label = at(pos + 1);
      if (label === 0xf9 && at(pos + 2) === 4 && at(pos + 3) & 1) transparent = at(pos + 6);
      pos += 2;
      for (let size = at(pos); size > 0; size = at(pos)) pos += size + 1; // sub-blocks
      if (at(pos) < 0) return null;
      pos += 1;
    } else if (block === 0x2c) {
      const flags = at(pos + 9);
      if (flags < 0) return null;
      if (flags & 0x80) palette = { offset: pos + 10, entries: 2 << (flags & 7) };
      break;
    } else {
      return null;
    }
  }
  if (transparent < 0 || !palette || transparent >= palette.entries) return null;
  const p = palette.offset + transparent * 3;
  if (p + 2 >= data.length) return null;
  return [data[p], data[p + 1], data[p + 2]];
}
