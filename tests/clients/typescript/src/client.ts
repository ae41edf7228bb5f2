/**
 * How a Node program reaches orgplane: one transport to the gateway (gRPC
 * over HTTP/2, or gRPC-Web over HTTP/1.1 as a browser would), and clients
 * that send a bearer token with every call.
 *
 * The suite runs once per transport: `ORGPLANE_TRANSPORT` is `grpc` or
 * `grpc-web`, `ORGPLANE_GATEWAY` the gateway's `http://host:port`.
 */
import { type DescService } from "@bufbuild/protobuf";
import {
  type Client,
  type Interceptor,
  type Transport,
  createClient,
} from "@connectrpc/connect";
import {
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

export const gateway = process.env.ORGPLANE_GATEWAY ?? "http://127.0.0.1:50051";
export const transportName = process.env.ORGPLANE_TRANSPORT ?? "grpc";

/** A transport to the gateway, with `interceptors` on every call. */
export function transport(interceptors: Interceptor[] = []): Transport {
  switch (transportName) {
    case "grpc":
      return createGrpcTransport({ baseUrl: gateway, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({
        baseUrl: gateway,
        httpVersion: "1.1",
        interceptors,
      });
    default:
      throw new Error(
        `ORGPLANE_TRANSPORT is "grpc" or "grpc-web", not ${transportName}`,
      );
  }
}

/** Sends `Authorization: Bearer <token>` with every call. */
export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** Clients of any service, acting as whoever holds `token`. */
export class Session {
  private readonly transport: Transport;

  constructor(readonly token: string) {
    this.transport = transport([bearer(token)]);
  }

  client<S extends DescService>(service: S): Client<S> {
    return createClient(service, this.transport);
  }
}

/** A name no other run of the suite uses: the server keeps its data. */
export function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}
