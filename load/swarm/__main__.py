from load.swarm.run import main

main()
