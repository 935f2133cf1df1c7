// The agent command's DRA flags, so that `apqn-operator agent` only spreads them in:
//   --dra-plugin [--dra-registration-dir D] [--dra-plugin-dir D] [--cdi-dir D] [--dra-metadata-dir D]
import { DEFAULT_CDI_DIR, DEFAULT_METADATA_ROOT, DEFAULT_PLUGIN_DIR, DEFAULT_REGISTRATION_DIR, type DraPluginOptions } from './plugin.js';

/** startAgent's `dra` option: where the plugin's sockets and files go (defaults as the kubelet expects). */
export type DraSettings = Pick<DraPluginOptions, 'registrationDir' | 'pluginDir' | 'cdiDir' | 'metadataRoot'>;

export const DRA_FLAGS = {
  'dra-plugin': 'boolean',
  'dra-registration-dir': 'string',
  'dra-plugin-dir': 'string',
  'cdi-dir': 'string',
  'dra-metadata-dir': 'string',
} as const;

export const DRA_USAGE = `
--dra-plugin serves the kubelet DRA plugin of driver ap.s390x.io (KubeVirt guests get their
mdev through it): registration socket in --dra-registration-dir (${DEFAULT_REGISTRATION_DIR}),
DRA socket in --dra-plugin-dir (${DEFAULT_PLUGIN_DIR}), CDI specs in --cdi-dir
(${DEFAULT_CDI_DIR}), device metadata under --dra-metadata-dir (${DEFAULT_METADATA_ROOT}).
`;

type DraFlagValues = { [K in keyof typeof DRA_FLAGS]?: (typeof DRA_FLAGS)[K] extends 'boolean' ? boolean : string };

/** The settings from parsed flags; undefined without --dra-plugin (directory flags alone do nothing). */
export function draSettingsFromFlags(flags: DraFlagValues): DraSettings | undefined {
  if (!flags['dra-plugin']) return undefined;
  const settings: DraSettings = {};
  if (flags['dra-registration-dir']) settings.registrationDir = flags['dra-registration-dir'];
  if (flags['dra-plugin-dir']) settings.pluginDir = flags['dra-plugin-dir'];
  if (flags['cdi-dir']) settings.cdiDir = flags['cdi-dir'];
  if (flags['dra-metadata-dir']) settings.metadataRoot = flags['dra-metadata-dir'];
  return settings;
}
