// bencode (a dev dependency) ships no types: what the tests use of it.
declare module 'bencode' {
  const bencode: { encode(value: unknown): Uint8Array; decode(data: Uint8Array): unknown };
  export default bencode;
}
