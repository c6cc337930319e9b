# replicant in a FROM scratch image: the static binary and nothing else.
#
# Build with `make image` (IMAGE=name:tag to choose the tag). The binary is
# built on the host by `make static` and copied from the build context
# rather than in a golang build stage, so building the image needs no base
# image from a registry. docs/deploy.md shows how to run it.
FROM scratch

COPY bin/static/replicant /usr/local/bin/replicant
# An empty directory made by `make image`, owned by the user below so a
# fresh named volume mounted on /data is writable by it.
COPY --chown=65532:65532 bin/static/data/ /data/

# No root inside: the server needs no privilege, and ports above 1024.
USER 65532:65532
WORKDIR /data
VOLUME /data

# RESP (Redis's port), HTTP API and dashboard, node-to-node.
EXPOSE 6379 8080 9080

# Every flag can also come from REPLICANT_<FLAG> variables, e.g.
#   docker run -e REPLICANT_ID=n1 ... replicant server
# The listen addresses default to loopback, which a container cannot be
# reached on; these make `docker run IMAGE server` reachable at once.
ENV REPLICANT_DATA=/data \
    REPLICANT_RESP=0.0.0.0:6379 \
    REPLICANT_HTTP=0.0.0.0:8080 \
    REPLICANT_PEER=0.0.0.0:9080

ENTRYPOINT ["/usr/local/bin/replicant"]
CMD ["server"]
