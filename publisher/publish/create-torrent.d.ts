// create-torrent ships no types: the part of its API the publisher uses (torrent.ts).
declare module 'create-torrent' {
  interface CreateTorrentOptions {
    name?: string;
    creationDate?: Date;
    comment?: string;
    createdBy?: string;
    announceList?: string[][];
    urlList?: string[];
    pieceLength?: number;
    private?: boolean;
  }
  export default function createTorrent(input: string | string[], opts: CreateTorrentOptions, cb: (err: Error | null, torrent: Uint8Array) => void): void;
}
