// Object keys as client-go's cache uses them: `namespace/name`, or `name` for cluster-scoped
// objects. Work queues, informer caches and log lines all use this one form.

export interface ObjectRef {
  namespace?: string;
  name: string;
}

export function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

export function keyOf(ref: ObjectRef): string {
  return ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
}

export function splitKey(key: string): ObjectRef {
  const slash = key.indexOf('/');
  if (slash < 0) return { name: key };
  if (key.indexOf('/', slash + 1) >= 0) throw new Error(`invalid object key ${JSON.stringify(key)}`);
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
