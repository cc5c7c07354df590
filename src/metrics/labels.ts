import type { PresetName } from '../domain/presets';

/** A tenant without a preset (its own server) is `custom`: preset names are a closed set, so labels stay few. */
export const presetLabel = (preset: PresetName | null | undefined): string => preset ?? 'custom';
