"""learnmesh node: libp2p host, gossip, sync, blobs, local API and CLI."""
